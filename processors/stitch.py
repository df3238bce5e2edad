"""The stitch step: one chunk result in; final segments, progress and completion out; the job's state kept.

The state lives in a table backed by a compacted changelog topic, so a killed worker's jobs carry on wherever its
partitions go. Crash safety comes from the order of writes: segments and status first (each idempotent for the
materialiser), then the state; a result parked for later is stored before the state that lists it, and parked
results are deleted only after the state that no longer needs them. A crash anywhere in between replays the same
result against the last stored state and sends the same events again.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import TypeAdapter

from ingest.service import chunk_key, draft_key
from ingest.storage import ObjectStore, StorageError
from processors.segmenting import to_segment
from processors.speakers import held_groups, known_voices, label_segments, voice_model
from processors.stitching import StitchStep, new_state, stitch
from processors.transport import Emitter, Source, parse
from processors.voices import LazyEncoder
from schemas import (
    ChunkResult,
    ChunkTranscribed,
    JobError,
    JobStatus,
    JobStatusChanged,
    Segment,
    SegmentTranscribed,
    SpeakerTurn,
)
from schemas.postprocess import PostprocessRequested, TranscriptDraft
from schemas.state import HeldSegments, StitchState

log = logging.getLogger(__name__)

_RESULT: TypeAdapter[ChunkResult] = TypeAdapter(ChunkResult)


class StitchStore(Protocol):
    def load(self, job_id: str) -> StitchState | None: ...

    def parked(self, job_id: str, index: int) -> ChunkTranscribed | None: ...

    def save(self, state: StitchState) -> None: ...

    def park(self, result: ChunkTranscribed) -> None: ...

    def unpark(self, job_id: str, index: int) -> None: ...

    def held(self, job_id: str, index: int) -> HeldSegments | None: ...

    def hold(self, held: HeldSegments) -> None: ...

    def release(self, job_id: str, index: int) -> None: ...


@dataclass(frozen=True)
class StitchResources:
    store: ObjectStore
    """The object store, to delete a finished job's chunk audio and read known speakers' references."""
    voices: LazyEncoder
    """Embeds known speakers' references for diarized jobs."""
    scratch_dir: Path


async def handle_result(
    raw: bytes | None, source: Source, res: StitchResources, emitter: Emitter, table: StitchStore
) -> None:
    result = await parse(raw, source, _RESULT, emitter, name="chunk result")
    if result is None:
        return
    job_id = result.job_id
    parked: Callable[[int], ChunkTranscribed | None] = lambda index: table.parked(job_id, index)  # noqa: E731
    state = table.load(job_id)
    try:
        step = stitch(state, result, parked)
    except Exception:
        # A result the stitcher cannot merge would fail again on every redelivery: fail its job instead.
        log.exception("chunk %d of job %s could not be stitched", result.index, job_id)
        step = _broken(state, result)
    if not step.changed:
        log.debug("result for chunk %d of job %s changes nothing", result.index, job_id)
        if step.state.finished:
            await asyncio.to_thread(_delete_chunks, res.store, job_id, range(result.index, result.index + 1))
        return
    state = step.state
    for held in step.held:
        table.hold(held)
    turns: list[SpeakerTurn] | None = None
    if step.completed and state.holds:
        # Every chunk is in: the speakers of the whole job are known now, and its segments go out at once.
        records = [r for index in range(state.count) if (r := table.held(job_id, index)) is not None]
        step.segments, turns = await asyncio.to_thread(_assembled, records, state, res)
        state.segments_emitted = len(step.segments)
    if step.completed and state.postprocess:
        # The language-model steps come last and may be slow: their own agent sends the segments and completes.
        draft = TranscriptDraft(segments=step.segments, completed=_status(step, turns))
        await asyncio.to_thread(_put_draft, res.store, job_id, draft)
        request = PostprocessRequested(
            job_id=job_id, draft_key=draft_key(job_id), steps=state.postprocess, language=state.language
        )
        await emitter.postprocess(request)
    else:
        if step.segments:
            await emitter.segments(
                [SegmentTranscribed(job_id=job_id, segment=s, language=state.language) for s in step.segments]
            )
        await emitter.status(_status(step, turns))
    if step.park is not None:
        table.park(step.park)
    table.save(state)
    for index in step.unpark:
        table.unpark(job_id, index)
    if state.finished and state.holds:
        for index in range(state.count):
            table.release(job_id, index)
    if state.finished:
        await asyncio.to_thread(_delete_chunks, res.store, job_id, range(state.count))


def _put_draft(store: ObjectStore, job_id: str, draft: TranscriptDraft) -> None:
    data = draft.model_dump_json().encode()
    store.put(draft_key(job_id), io.BytesIO(data), length=len(data), content_type="application/json")


def _assembled(
    records: Sequence[HeldSegments], state: StitchState, res: StitchResources
) -> tuple[list[Segment], list[SpeakerTurn] | None]:
    """The job's segments, numbered from 0; with speakers and who spoke when for a diarized job (without them,
    and with a logged error, should diarizing fail, so that a transcript already made is never lost to it)."""

    def plain() -> list[Segment]:
        groups = held_groups(records)
        return [to_segment(n, group, with_words=state.word_timestamps) for n, group in enumerate(groups)]

    if state.diarization is None:
        return plain(), None
    try:
        model = voice_model(records)
        known = []
        if model is not None:  # with no voice to compare, references would be embedded for nothing
            encoder = res.voices.get(model)
            known = known_voices(res.store, state.diarization.known_speakers, encoder, res.scratch_dir)
        labelled = label_segments(records, state.diarization, known, with_words=state.word_timestamps)
    except Exception:
        log.exception("job %s could not be diarized; its segments go out without speakers", state.job_id)
        return plain(), None
    return labelled.segments, labelled.turns


def _status(step: StitchStep, speaker_turns: list[SpeakerTurn] | None = None) -> JobStatusChanged:
    state = step.state
    if step.error is not None:
        return JobStatusChanged(job_id=state.job_id, status=JobStatus.FAILED, model=state.model, error=step.error)
    if step.completed:
        return JobStatusChanged(
            job_id=state.job_id,
            status=JobStatus.COMPLETED,
            progress=1.0,
            model=state.model,
            language=state.language,
            language_probability=state.language_probability,
            duration=state.duration,
            segment_count=state.segments_emitted,
            chunks_total=state.count,
            chunks_done=state.count,
            audio_seconds_done=state.duration,
            recovered_stretches=state.recovered_stretches,
            speaker_turns=speaker_turns,
        )
    progress = state.audio_seconds_done / state.duration if state.duration > 0 else 0.0
    return JobStatusChanged(
        job_id=state.job_id,
        status=JobStatus.PROCESSING,
        progress=round(min(0.99, progress), 4),
        model=state.model,
        duration=state.duration,
        chunks_total=state.count,
        chunks_done=state.chunks_done,
        audio_seconds_done=min(state.audio_seconds_done, state.duration),
    )


def _broken(state: StitchState | None, result: ChunkResult) -> StitchStep:
    failed = (state or new_state(result)).model_copy(update={"finished": True, "tail": [], "edge": [], "parked": []})
    error = JobError(code="internal_error", message="the worker hit an unexpected error assembling this transcript")
    return StitchStep(state=failed, unpark=list(state.parked) if state else [], error=error)


def _delete_chunks(store: ObjectStore, job_id: str, indices: range) -> None:
    """The chunks' audio is scratch (the original upload stays); a chunk redelivered later finds its job done."""
    for index in indices:
        try:
            store.delete(chunk_key(job_id, index))
        except StorageError as e:
            log.warning("could not delete %s: %s", chunk_key(job_id, index), e)
