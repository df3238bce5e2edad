"""Diarization requests: the speaker options of a form, and known speakers' reference recordings.

OpenAI's `known_speaker_names[]` and `known_speaker_references[]` pair a name with a data URL of 2 to 10 s of that
speaker alone. The references are checked (FFmpeg must read them as audio of about that length) and stored beside
the job's upload, where the worker that labels the job's speakers reads them; they go with the job.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from dataclasses import dataclass

from api.deps import Services
from api.errors import ApiError
from ingest import StorageError, speaker_key
from ingest.probe import NotAudio, probe
from schemas import Diarization, KnownSpeaker, TranscriptionOptions

MAX_KNOWN = 4
MAX_REFERENCE_BYTES = 4 * 1024 * 1024
REFERENCE_SECONDS = (2.0, 10.0)
# Encoders pad a little (an MP3's priming samples, a container's rounding): a reference a few tenths over passes.
_SLACK_S = 0.5
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,(?P<data>.*)$", re.DOTALL)
_NAMES = "known_speaker_names[]"
_REFERENCES = "known_speaker_references[]"


@dataclass(frozen=True)
class Reference:
    name: str
    audio: bytes


def references(names: list[str] | None, urls: list[str] | None) -> list[Reference]:
    """The known speakers of a form, decoded; a 400 naming the parameter for anything malformed."""
    names, urls = names or [], urls or []
    if len(names) != len(urls):
        raise ApiError(400, f"{_NAMES} and {_REFERENCES} must have the same length", param=_NAMES, code="invalid_value")
    if len(names) > MAX_KNOWN:
        raise ApiError(400, f"at most {MAX_KNOWN} known speakers", param=_NAMES, code="invalid_value")
    out: list[Reference] = []
    for name, url in zip(names, urls, strict=True):
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise ApiError(400, "a known speaker's name has 1 to 64 characters", param=_NAMES, code="invalid_value")
        if name in {r.name for r in out}:
            raise ApiError(400, f"the known speaker {name!r} is named twice", param=_NAMES, code="invalid_value")
        match = _DATA_URL.match(url.strip())
        if match is None:
            raise ApiError(400, "each reference must be a base64 data URL", param=_REFERENCES, code="invalid_value")
        try:
            audio = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise ApiError(
                400, f"the reference of {name!r} is not valid base64", param=_REFERENCES, code="invalid_value"
            ) from e
        if not audio or len(audio) > MAX_REFERENCE_BYTES:
            raise ApiError(
                400,
                f"the reference of {name!r} must hold 1 byte to 4 MiB of audio",
                param=_REFERENCES,
                code="invalid_value",
            )
        out.append(Reference(name, audio))
    return out


def diarization(
    diarize: bool, min_speakers: int | None, max_speakers: int | None, known: list[Reference]
) -> Diarization | None:
    """The options when diarization was asked for (known speakers ask for it too); bad bounds are a 400."""
    if not diarize and not known:
        if min_speakers is not None or max_speakers is not None:
            raise ApiError(
                400, "min_speakers and max_speakers need diarize=true", param="diarize", code="invalid_value"
            )
        return None
    for param, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and not 1 <= value <= 32:
            raise ApiError(400, f"{param} must be between 1 and 32", param=param, code="invalid_value")
    if min_speakers and max_speakers and min_speakers > max_speakers:
        raise ApiError(400, "min_speakers is above max_speakers", param="min_speakers", code="invalid_value")
    return Diarization(min_speakers=min_speakers, max_speakers=max_speakers)


async def with_references(
    services: Services, job_id: str, options: TranscriptionOptions, known: list[Reference]
) -> TranscriptionOptions:
    """The options of job `job_id` once its known speakers' references are checked and stored beside it."""
    if not known or options.diarization is None:
        return options
    diarized = await _store_references(services, job_id, options.diarization, known)
    return options.model_copy(update={"diarization": diarized})


async def _store_references(
    services: Services, job_id: str, options: Diarization, known: list[Reference]
) -> Diarization:
    """Checks each reference's audio and stores it under the job; the options then name where."""
    speakers = []
    for index, reference in enumerate(known):
        try:
            probed = await asyncio.to_thread(probe, io.BytesIO(reference.audio))
        except NotAudio as e:
            raise ApiError(
                400, f"the reference of {reference.name!r}: {e}", param=_REFERENCES, code="undecodable_audio"
            ) from e
        low, high = REFERENCE_SECONDS
        if not low - _SLACK_S <= probed.seconds <= high + _SLACK_S:
            raise ApiError(
                400,
                f"the reference of {reference.name!r} lasts {probed.seconds:.1f} s; it must last {low:g} to {high:g} s",
                param=_REFERENCES,
                code="invalid_value",
            )
        key = speaker_key(job_id, index)
        try:
            await asyncio.to_thread(services.store.put, key, io.BytesIO(reference.audio), length=len(reference.audio))
        except StorageError as e:
            raise ApiError(
                503,
                "the known speakers could not be stored; try again later",
                type="server_error",
                code="service_unavailable",
            ) from e
        speakers.append(KnownSpeaker(name=reference.name, audio_key=key))
    return options.model_copy(update={"known_speakers": speakers})
