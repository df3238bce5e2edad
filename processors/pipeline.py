"""Handling one request event: parse, fetch, decode, transcribe, emit. Transport-free, so tests drive it directly.

Retry or fail is decided here, once: a payload that does not parse goes to the dead-letter topic; audio that is
missing or cannot be decoded fails the job with a reason; anything unexpected fails the job too (logged with its
traceback) rather than stopping the consumer. Every emitted event is keyed by job id, and segments carry their
position, so a redelivered request re-emits the same facts and the materialiser's upserts absorb them.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from ingest.storage import ObjectNotFound, ObjectStore, StorageError
from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from processors.engine import Transcriber, TranscriptionSummary
from schemas import (
    DeadLetter,
    JobError,
    JobStatus,
    JobStatusChanged,
    Segment,
    SegmentTranscribed,
    TranscriptionRequested,
)

log = logging.getLogger(__name__)


class Emitter(Protocol):
    """Where results go; each call returns once the event is durably written."""

    async def status(self, event: JobStatusChanged) -> None: ...

    async def segment(self, event: SegmentTranscribed) -> None: ...

    async def dead_letter(self, event: DeadLetter) -> None: ...


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(frozen=True)
class Resources:
    store: ObjectStore
    transcriber: Transcriber
    scratch_dir: Path
    max_audio_seconds: float
    progress_interval_s: float


async def handle_request(raw: bytes | None, source: Source, res: Resources, emitter: Emitter) -> None:
    request = await _parse(raw, source, emitter)
    if request is None:
        return
    job_id = request.job_id
    model = res.transcriber.model_name
    await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.PROCESSING, model=model))
    try:
        if request.options.model not in (None, model):
            raise _JobFailed("model_not_served", f"this worker serves {model!r}, not {request.options.model!r}")
        audio = await asyncio.to_thread(_fetch_and_decode, request, res)
        summary = await _transcribe(request, audio, res, emitter)
    except _JobFailed as e:
        log.info("job %s failed: %s", job_id, e.error.message)
        await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.FAILED, model=model, error=e.error))
        return
    except Exception:
        log.exception("job %s failed unexpectedly", job_id)
        error = JobError(code="internal_error", message="the worker hit an unexpected error processing this job")
        await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.FAILED, model=model, error=error))
        return
    await emitter.status(
        JobStatusChanged(
            job_id=job_id,
            status=JobStatus.COMPLETED,
            progress=1.0,
            model=model,
            language=summary.language,
            language_probability=summary.language_probability,
            duration=summary.duration,
            segment_count=summary.segment_count,
        )
    )


class _JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


async def _parse(raw: bytes | None, source: Source, emitter: Emitter) -> TranscriptionRequested | None:
    try:
        if not raw:
            raise ValueError("empty message value")
        return TranscriptionRequested.model_validate_json(raw)
    except (ValidationError, ValueError) as e:
        reason = _describe_invalid(e)
        log.warning("request at %s[%d]@%d is malformed: %s", source.topic, source.partition, source.offset, reason)
        await emitter.dead_letter(
            DeadLetter(
                job_id=source.key.decode("utf-8", "replace") if source.key else None,
                source_topic=source.topic,
                source_partition=source.partition,
                source_offset=source.offset,
                key=source.key.decode("utf-8", "replace") if source.key else None,
                payload=(raw or b"").decode("utf-8", "replace"),
                reason=reason,
            )
        )
        return None


def _describe_invalid(error: Exception) -> str:
    if isinstance(error, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors()[:5]]
        return "invalid TranscriptionRequested: " + "; ".join(parts)
    return str(error)


def _fetch_and_decode(request: TranscriptionRequested, res: Resources) -> npt.NDArray[np.float32]:
    res.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=res.scratch_dir, prefix=f"{request.job_id}-") as tmp:
        local = Path(tmp) / "audio"
        try:
            size = res.store.download(request.audio.key, local)
        except ObjectNotFound as e:
            raise _JobFailed("audio_not_found", f"no object {request.audio.key!r} in the audio store") from e
        except StorageError as e:
            raise _JobFailed("storage_error", f"the audio could not be read from the store: {e}") from e
        if size == 0:
            raise _JobFailed("empty_audio", "the audio file is empty")
        try:
            return decode_audio(local, max_seconds=res.max_audio_seconds)
        except UndecodableAudio as e:
            raise _JobFailed("undecodable_audio", str(e)) from e


async def _transcribe(
    request: TranscriptionRequested, audio: npt.NDArray[np.float32], res: Resources, emitter: Emitter
) -> TranscriptionSummary:
    """Segments cross from the inference thread to this loop through a queue, so each is emitted as it is final."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Segment, str] | None] = asyncio.Queue()

    def on_segment(segment: Segment, language: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (segment, language))

    def run() -> TranscriptionSummary:
        try:
            return res.transcriber.transcribe(audio, request.options, on_segment)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    inference = asyncio.ensure_future(asyncio.to_thread(run))
    duration = audio.size / SAMPLE_RATE
    last_progress = time.monotonic()
    while (item := await queue.get()) is not None:
        segment, language = item
        await emitter.segment(SegmentTranscribed(job_id=request.job_id, segment=segment, language=language))
        now = time.monotonic()
        if now - last_progress >= res.progress_interval_s and duration > 0:
            last_progress = now
            progress = min(0.99, round(segment.end / duration, 3))
            await emitter.status(
                JobStatusChanged(job_id=request.job_id, status=JobStatus.PROCESSING, progress=progress)
            )
    return await inference
