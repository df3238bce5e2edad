"""The postprocess step: a finished transcript's language-model steps, then its segments and its completion.

The stitcher left the transcript as a draft in the object store; this step runs the steps the job asked for,
sends every segment (same ids as the draft's, so a repeat after a crash overwrites rather than adds) and the
completion with each step's outcome, then deletes the draft. A request whose draft is gone was done already.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter

from ingest.storage import ObjectNotFound, ObjectStore, StorageError
from processors.llm import ChatClient
from processors.polishing import polish
from processors.transport import Emitter, Source, parse
from schemas import SegmentTranscribed
from schemas.postprocess import PostprocessRequested, TranscriptDraft

log = logging.getLogger(__name__)

_REQUEST = TypeAdapter(PostprocessRequested)


@dataclass(frozen=True)
class PostprocessResources:
    store: ObjectStore
    llm: ChatClient | None
    """None: no endpoint configured; every step is skipped with that reason."""
    max_change: float
    scratch_dir: Path


async def handle_postprocess(raw: bytes | None, source: Source, res: PostprocessResources, emitter: Emitter) -> None:
    request = await parse(raw, source, _REQUEST, emitter, name="postprocess request")
    if request is None:
        return
    try:
        draft = await asyncio.to_thread(_load, res, request.draft_key)
    except ObjectNotFound:
        log.info("job %s was post-processed already (its draft is gone)", request.job_id)
        return
    segments, report = await polish(draft.segments, request.steps, res.llm, res.max_change)
    for outcome in report.steps:
        log.info(
            "job %s: %s %s%s",
            request.job_id,
            outcome.step.value,
            outcome.status,
            f" ({outcome.reason})" * bool(outcome.reason),
        )
    await emitter.segments(
        [SegmentTranscribed(job_id=request.job_id, segment=s, language=request.language) for s in segments]
    )
    await emitter.status(draft.completed.model_copy(update={"postprocess": report, "segment_count": len(segments)}))
    try:
        await asyncio.to_thread(res.store.delete, request.draft_key)
    except StorageError as e:
        log.warning("could not delete %s: %s", request.draft_key, e)


def _load(res: PostprocessResources, key: str) -> TranscriptDraft:
    """Raises `StorageError` other than `ObjectNotFound` to have the request redelivered."""
    with tempfile.TemporaryDirectory(dir=res.scratch_dir) as folder:
        path = Path(folder) / "draft.json"
        res.store.download(key, path)
        return TranscriptDraft.model_validate_json(path.read_bytes())
