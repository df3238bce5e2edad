"""What an upload is, found from its bytes: whether FFmpeg reads it as audio, and how long it lasts.

The filename and the declared content type are never trusted: FFmpeg sniffs the container from the content. The
duration comes from the container's header where it has one, else from walking the audio packets (no decoding).
A header can lie; the workers enforce the same duration limit again while they decode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, BinaryIO


class NotAudio(Exception):
    """The upload is not audio FFmpeg can read; the message says why, for the client."""


@dataclass(frozen=True)
class Probed:
    seconds: float
    container: str
    """FFmpeg's name of the format it recognised (`wav`, `ogg`, `mov,mp4,m4a,3gp,3g2,mj2`, …)."""
    codec: str


def probe(data: BinaryIO) -> Probed:
    """Reads `data` from its start (decoding only its first audio frame); leaves it at its start again."""
    import av  # deferred: loading FFmpeg's libraries is not free

    try:
        with _open(data) as container:
            if not container.streams.audio:
                raise NotAudio("the file has no audio stream")
            stream = container.streams.audio[0]
            if next(iter(container.decode(stream)), None) is None:
                raise NotAudio("the file contains no audio samples")
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            found = Probed(seconds=seconds or 0.0, container=container.format.name, codec=stream.codec_context.name)
        if found.seconds <= 0:
            with _open(data) as container:
                found = replace(found, seconds=_walk(container, container.streams.audio[0]))
        return found
    except av.FFmpegError as e:
        raise NotAudio(f"not a readable audio file ({str(getattr(e, 'strerror', None) or e).strip()})") from e
    finally:
        data.seek(0)


def _open(data: BinaryIO) -> Any:
    import av

    data.seek(0)
    return av.open(data, mode="r", metadata_errors="ignore")


def _walk(container: Any, stream: Any) -> float:
    total = 0.0
    for packet in container.demux(stream):
        if packet.duration is not None and packet.time_base is not None:
            total += float(packet.duration * packet.time_base)
    return total
