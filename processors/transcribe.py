"""The transcribe step: a batch of chunk events, from any jobs, decoded together on this worker's model.

Poison input: before decoding, each chunk's attempt count is raised in a durable table and flushed, so a chunk
whose decoding kills the worker is known as such to whichever worker gets it next. A chunk already started
before is decoded alone (one bad chunk must not take its batch-mates' attempts with it), and a chunk that has
killed a worker `max_attempts` times fails its job with its position and time range instead of being tried
again. A chunk that fails for a reason that will not change (its audio is missing or unreadable, or decoding it
alone raises) fails its job at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter

from ingest.storage import ObjectNotFound, ObjectStore, StorageError
from processors.audio import UndecodableAudio
from processors.checkpoints import WeightsNotAvailable
from processors.chunk_audio import get_chunk
from processors.engine import Transcriber
from processors.metrics import WorkerMetrics
from processors.recovery import RecoveryOptions, clip
from processors.scratch import out_of_space
from processors.scratch import reason as scratch_reason
from processors.speakers import chunk_voices
from processors.transcribing import LoadedChunk, transcribe_chunks
from processors.transport import Emitter, Source, parse
from processors.voices import LazyEncoder
from schemas import ChunkFailed, ChunkRequested, ChunkTranscribed, JobError, TimeSpan

log = logging.getLogger(__name__)

_CHUNK = TypeAdapter(ChunkRequested)


class Attempts(Protocol):
    """How often each chunk in flight was started; durable across worker deaths."""

    def get(self, key: str, partition: int) -> int: ...

    def set(self, key: str, partition: int, count: int) -> None: ...

    def clear(self, key: str, partition: int) -> None: ...

    async def flush(self) -> None:
        """Return once every `set` is durable."""


@dataclass(frozen=True)
class TranscribeResources:
    store: ObjectStore
    transcriber: Transcriber
    scratch_dir: Path
    recovery: RecoveryOptions
    max_attempts: int
    batch_size: int
    """Most chunk events taken into one decode."""
    batch_window_s: float
    """How long to wait for more chunk events before decoding what there is."""
    voices: LazyEncoder
    """Embeds the voices of diarized jobs' chunks."""
    metrics: WorkerMetrics | None = None
    priority: bool = False
    """Chunks of short recordings and of those a caller waits on: decoded with the priority decoder, whose model
    calls go first."""


@dataclass
class _Work:
    chunk: ChunkRequested
    source: Source
    attempts: int

    @property
    def key(self) -> str:
        return attempt_key(self.chunk)


def attempt_key(chunk: ChunkRequested) -> str:
    return f"{chunk.job_id}/{chunk.index}"


def clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def chunk_failed(chunk: ChunkRequested, code: str, reason: str) -> ChunkFailed:
    where = f"chunk {chunk.index + 1} of {chunk.count} ({clock(chunk.owned.start)}-{clock(chunk.owned.end)})"
    error = JobError(code=code, message=f"{where} {reason}")
    return ChunkFailed.model_validate({**chunk.placement(), "error": error})


async def handle_chunks(
    messages: Sequence[tuple[bytes | None, Source]],
    res: TranscribeResources,
    emitter: Emitter,
    attempts: Attempts,
) -> None:
    work: list[_Work] = []
    results: list[ChunkTranscribed | ChunkFailed] = []
    for raw, source in messages:
        chunk = await parse(raw, source, _CHUNK, emitter, name="ChunkRequested")
        if chunk is None:
            continue
        started = attempts.get(attempt_key(chunk), source.partition)
        if started >= res.max_attempts:
            log.error("chunk %s killed the worker %d times; failing its job", attempt_key(chunk), started)
            results.append(
                chunk_failed(chunk, "chunk_poisoned", f"stopped the worker {started} times and was given up")
            )
            # The count stays: should this event come again before its offset is committed, it fails again at
            # once instead of starting a fresh round of attempts.
            continue
        work.append(_Work(chunk, source, started))
        attempts.set(attempt_key(chunk), source.partition, started + 1)
    if work:
        await attempts.flush()
        clock_start = time.perf_counter()
        results += await asyncio.to_thread(_transcribe, work, res)
        seconds = sum(item.chunk.owned.duration for item in work)
        elapsed = time.perf_counter() - clock_start
        jobs = len({item.chunk.job_id for item in work})
        kind = "priority chunks" if res.priority else "chunks"
        log.info("decoded %d %s of %d jobs (%.1f s of audio) in %.1f s", len(work), kind, jobs, seconds, elapsed)
        if res.metrics is not None:
            _observe(res.metrics, len(work), jobs, seconds, elapsed)
    if res.metrics is not None:
        for result in results:
            if isinstance(result, ChunkFailed):
                res.metrics.chunks.labels(result.error.code).inc()
            else:
                res.metrics.chunks.labels("transcribed").inc()
                res.metrics.recovered.inc(result.recovered_stretches)
    if results:
        await emitter.chunk_results(results)
    for item in work:
        attempts.clear(item.key, item.source.partition)


def _observe(metrics: WorkerMetrics, chunks: int, jobs: int, seconds: float, elapsed: float) -> None:
    metrics.batch_size.observe(chunks)
    metrics.batch_jobs.observe(jobs)
    metrics.batch_seconds.observe(elapsed)
    metrics.audio.inc(seconds)


def _transcribe(work: list[_Work], res: TranscribeResources) -> list[ChunkTranscribed | ChunkFailed]:
    out: list[ChunkTranscribed | ChunkFailed] = []
    fresh: list[LoadedChunk] = []
    retried: list[LoadedChunk] = []
    for item in work:
        try:
            loaded = LoadedChunk(item.chunk, get_chunk(res.store, item.chunk.audio_key, res.scratch_dir))
        except ObjectNotFound:
            out.append(chunk_failed(item.chunk, "chunk_audio_missing", "has no audio in the store"))
            continue
        except StorageError as e:
            if out_of_space(e):
                why = "could not be copied: " + scratch_reason("no space left")
                out.append(chunk_failed(item.chunk, "scratch_full", why))
            else:
                out.append(chunk_failed(item.chunk, "storage_error", f"could not be read from the store: {e}"))
            continue
        except UndecodableAudio as e:
            out.append(chunk_failed(item.chunk, "undecodable_audio", f"has unreadable audio: {e}"))
            continue
        (retried if item.attempts else fresh).append(loaded)
    decoder = res.transcriber.priority_decoder if res.priority else res.transcriber.decoder
    done: list[tuple[LoadedChunk, ChunkTranscribed]] = []
    if fresh:
        try:
            done += zip(fresh, transcribe_chunks(decoder, fresh, res.recovery), strict=True)
        except Exception:
            log.exception("a batch of %d chunks failed; decoding them one by one", len(fresh))
            retried = fresh + retried
    for loaded in retried:
        try:
            done += zip([loaded], transcribe_chunks(decoder, [loaded], res.recovery), strict=True)
        except Exception:
            log.exception("chunk %s failed on its own", attempt_key(loaded.request))
            reason = "could not be transcribed (the worker's log has the details)"
            out.append(chunk_failed(loaded.request, "transcription_error", reason))
    for loaded, result in done:
        out.append(_with_voices(loaded, result, res) if loaded.request.options.diarization else result)
    return out


def _with_voices(
    loaded: LoadedChunk, result: ChunkTranscribed, res: TranscribeResources
) -> ChunkTranscribed | ChunkFailed:
    chunk = loaded.request
    try:
        encoder = res.voices.get()
    except WeightsNotAvailable as e:
        log.error("cannot diarize: %s", e)
        return chunk_failed(chunk, "diarization_unavailable", f"cannot be diarized on this worker: {e}")
    started = time.perf_counter()  # after the encoder's one-time load: the metric is the per-chunk cost
    try:
        windows = chunk_voices(loaded.audio, [(s.start, s.end) for s in chunk.spans], chunk.owned, encoder)
    except Exception:
        log.exception("the voices of chunk %s could not be embedded", attempt_key(chunk))
        return chunk_failed(chunk, "diarization_error", "could not be diarized (the worker's log has the details)")
    elapsed = time.perf_counter() - started
    log.debug("embedded %d voice windows of chunk %s in %.2f s", len(windows), attempt_key(chunk), elapsed)
    if res.metrics is not None:
        res.metrics.voice_seconds.observe(elapsed)
        res.metrics.voice_windows.inc(len(windows))
    speech = clip([(s.start, s.end) for s in chunk.speech], chunk.owned.start, chunk.owned.end)
    return result.model_copy(
        update={
            "voices": windows,
            "voice_model": encoder.name,
            "speech": [TimeSpan(start=start, end=end) for start, end in speech],
        }
    )
