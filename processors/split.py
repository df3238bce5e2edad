"""The split step: one request in, its recording cut into chunks for any worker of the group to transcribe.

Fetch and decode once; find the speech (VAD); bring each speech region to a common level; plan chunks that end
in pauses; detect the language once on the first speech unless the request fixed it; store each chunk's audio;
publish one event per chunk, dealt to the group's workers in turn (a recording of a few chunks, or one a caller
waits on, to the topic whose decodes go first); then `processing` with the chunk count.
A recording without speech completes here with an empty transcript.

Retry or fail is decided here: a payload that does not parse is dead-lettered; audio that is missing or cannot be
decoded fails the job with a reason; anything unexpected fails the job too (logged with its traceback). Everything
is deterministic, so a redelivered request stores the same chunk objects and publishes the same chunks, which the
stitcher then sees twice and merges once.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import TypeAdapter

from ingest.service import chunk_key
from ingest.storage import ObjectNotFound, ObjectStore, StorageError
from processors.audio import UndecodableAudio, decode_audio
from processors.chunk_audio import put_chunk
from processors.chunk_plan import chunk_requested, plan_recording
from processors.engine import Transcriber
from processors.metrics import WorkerMetrics
from processors.scratch import out_of_space, reason
from processors.settings import ChunkingSettings
from processors.spreading import Owners, spread
from processors.transport import Emitter, Source, parse
from schemas import (
    ChunkRequested,
    JobError,
    JobStatus,
    JobStatusChanged,
    TranscriptionRequested,
)

log = logging.getLogger(__name__)

_REQUEST = TypeAdapter(TranscriptionRequested)


@dataclass(frozen=True)
class SplitResources:
    store: ObjectStore
    transcriber: Transcriber
    scratch_dir: Path
    max_audio_seconds: float
    chunking: ChunkingSettings
    partitions: int
    """Partitions of the chunk topics: without `owners`, chunks of one job go round-robin over all of them."""
    metrics: WorkerMetrics | None = None
    priority_chunks: int = 0
    """Recordings of at most this many chunks go to the short recordings' topic, ahead of longer ones."""
    owners: Callable[[bool], Owners] | None = None
    """The partitions each transcribe worker holds, of the short recordings' topic (True) or the other; chunks are
    dealt to workers in turn (`processors.spreading`)."""


class JobFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = JobError(code=code, message=message)


@dataclass(frozen=True)
class _Split:
    duration: float
    chunks: list[ChunkRequested]


async def handle_request(raw: bytes | None, source: Source, res: SplitResources, emitter: Emitter) -> None:
    request = await parse(raw, source, _REQUEST, emitter, name="TranscriptionRequested")
    if request is None:
        return
    job_id = request.job_id
    model = res.transcriber.model_name
    await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.PROCESSING, model=model))
    try:
        if request.options.model not in (None, model):
            raise JobFailed("model_not_served", f"this worker serves {model!r}, not {request.options.model!r}")
        split = await asyncio.to_thread(_split, request, res)
    except JobFailed as e:
        log.info("job %s failed: %s", job_id, e.error.message)
        await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.FAILED, model=model, error=e.error))
        return
    except Exception:
        log.exception("job %s failed unexpectedly", job_id)
        error = JobError(code="internal_error", message="the worker hit an unexpected error processing this job")
        await emitter.status(JobStatusChanged(job_id=job_id, status=JobStatus.FAILED, model=model, error=error))
        return
    if not split.chunks:
        await emitter.status(
            JobStatusChanged(
                job_id=job_id,
                status=JobStatus.COMPLETED,
                progress=1.0,
                model=model,
                language=request.options.language,
                duration=split.duration,
                segment_count=0,
                chunks_total=0,
                chunks_done=0,
                audio_seconds_done=split.duration,
                recovered_stretches=0,
            )
        )
        return
    if res.metrics is not None:
        res.metrics.jobs_split.inc()
    first = zlib.crc32(job_id.encode())  # jobs start on different workers and partitions
    ahead = request.interactive or len(split.chunks) <= res.priority_chunks
    # One chunk goes to one worker whatever the broker says: a short request does not wait for the question.
    owners = []
    if res.owners is not None and len(split.chunks) > 1:
        owners = await asyncio.to_thread(res.owners, ahead)
    partitions = spread(len(split.chunks), first, res.partitions, owners)
    await emitter.chunks(list(zip(split.chunks, partitions, strict=True)), priority=ahead)
    await emitter.status(
        JobStatusChanged(
            job_id=job_id,
            status=JobStatus.PROCESSING,
            model=model,
            duration=split.duration,
            chunks_total=len(split.chunks),
            chunks_done=0,
            audio_seconds_done=0.0,
        )
    )


def _split(request: TranscriptionRequested, res: SplitResources) -> _Split:
    recording = plan_recording(_fetch_and_decode(request, res), res.chunking)
    options = request.options
    probability = None
    if options.language is None and len(recording.chunks) > 1:
        # Once per job, on its first speech; a single chunk detects it on its own window, which costs nothing.
        language, probability = res.transcriber.decoder.detect_language(recording.packed(recording.chunks[0]))
        options = options.model_copy(update={"language": language})
    chunks = []
    for chunk in recording.chunks:
        key = chunk_key(request.job_id, chunk.index)
        try:
            put_chunk(res.store, key, recording.packed(chunk))
        except StorageError as e:
            raise JobFailed("storage_error", f"the chunks could not be written to the store: {e}") from e
        chunks.append(
            chunk_requested(
                request.job_id,
                recording,
                chunk,
                overlap_s=res.chunking.overlap_s,
                model=res.transcriber.model_name,
                audio_key=key,
                options=options,
                language_probability=probability,
            )
        )
    return _Split(duration=recording.duration, chunks=chunks)


def _fetch_and_decode(request: TranscriptionRequested, res: SplitResources) -> npt.NDArray[np.float32]:
    res.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=res.scratch_dir, prefix=f"{request.job_id}-") as tmp:
        local = Path(tmp) / "audio"
        try:
            size = res.store.download(request.audio.key, local)
        except ObjectNotFound as e:
            raise JobFailed("audio_not_found", f"no object {request.audio.key!r} in the audio store") from e
        except StorageError as e:
            if out_of_space(e):
                raise JobFailed("scratch_full", reason("copying the audio from the store")) from e
            raise JobFailed("storage_error", f"the audio could not be read from the store: {e}") from e
        if size == 0:
            raise JobFailed("empty_audio", "the audio file is empty")
        try:
            return decode_audio(local, max_seconds=res.max_audio_seconds)
        except UndecodableAudio as e:
            raise JobFailed("undecodable_audio", str(e)) from e
