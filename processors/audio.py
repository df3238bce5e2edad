"""Decoding any container PyAV reads into the 16 kHz mono float32 samples Whisper expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # Whisper's input rate: 480000 samples in a 30-second window


class UndecodableAudio(Exception):
    """The input is not audio that can be decoded; the message says why, for the job's error."""


def decode_audio(path: Path, *, max_seconds: float | None = None) -> npt.NDArray[np.float32]:
    """Decode the first audio stream, downmixed and resampled; raises `UndecodableAudio`."""
    import av  # deferred: loading FFmpeg's libraries is not free

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise UndecodableAudio(f"not a readable audio file ({_reason(e)})") from e
    with container:
        if not container.streams.audio:
            raise UndecodableAudio("the file has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[npt.NDArray[np.float32]] = []
        limit = int(max_seconds * SAMPLE_RATE) if max_seconds else None
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    chunks.append(chunk)
                    total += chunk.size
                if limit is not None and total > limit:
                    raise UndecodableAudio(f"the audio is longer than the limit of {max_seconds:.0f} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.FFmpegError as e:
            if not chunks:
                raise UndecodableAudio(f"the audio stream cannot be decoded ({_reason(e)})") from e
            # A damaged tail after good audio: keep what decoded, as players do.
    if not chunks:
        raise UndecodableAudio("the file contains no audio samples")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    if samples.size == 0:
        raise UndecodableAudio("the file contains no audio samples")
    return samples


def _reason(error: Exception) -> str:
    return str(getattr(error, "strerror", None) or error).strip() or type(error).__name__
