"""Accepting a job: store the audio, then publish the request, and undo the first if the second fails."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import BinaryIO

from ingest.publisher import EventPublisher, PublishError
from ingest.storage import ObjectStore, StorageError
from schemas import AudioRef, TopicNames, TranscriptionOptions, TranscriptionRequested


class IngestUnavailable(Exception):
    """The audio could not be stored or the request could not be published; nothing was kept."""


def new_job_id() -> str:
    return "job_" + secrets.token_hex(12)


def audio_key(job_id: str) -> str:
    """Deterministic, so a retried upload of the same job overwrites instead of leaking a second copy."""
    return f"uploads/{job_id}/audio"


def chunk_key(job_id: str, index: int) -> str:
    """Where the split agent stores a chunk's audio. Deterministic, so a redelivered request overwrites its own
    chunks instead of adding new ones; the API deletes them with the job."""
    return f"chunks/{job_id}/{index:05d}.wav"


def speaker_key(job_id: str, index: int) -> str:
    """Where the API stores a known speaker's reference recording for a job; deleted with the job."""
    return f"uploads/{job_id}/speaker-{index}"


def draft_key(job_id: str) -> str:
    """Where the stitcher leaves a finished transcript for the language-model steps; deleted once they ran."""
    return f"drafts/{job_id}.json"


async def submit(
    *,
    store: ObjectStore,
    publisher: EventPublisher,
    topics: TopicNames,
    data: BinaryIO,
    length: int,
    filename: str | None,
    content_type: str | None,
    options: TranscriptionOptions,
    owner: str | None = None,
    webhook_url: str | None = None,
    job_id: str | None = None,
    interactive: bool = False,
) -> TranscriptionRequested:
    """Store the upload and publish its request; returns the published event once the broker confirmed it."""
    job_id = job_id or new_job_id()
    key = audio_key(job_id)
    try:
        await asyncio.to_thread(store.put, key, data, length=length, content_type=content_type)
    except StorageError as e:
        raise IngestUnavailable(f"audio could not be stored: {e}") from e
    event = TranscriptionRequested(
        job_id=job_id,
        audio=AudioRef(key=key, filename=filename, content_type=content_type, size=length),
        options=options,
        owner=owner,
        webhook_url=webhook_url,
        interactive=interactive,
    )
    try:
        await publisher.publish(topics.requests, job_id, event)
    except PublishError as e:
        await asyncio.to_thread(_forget, store, key)
        raise IngestUnavailable(f"the job queue did not accept the request: {e}") from e
    return event


def _forget(store: ObjectStore, key: str) -> None:
    # An orphaned object costs disk, never correctness: no event points at it.
    with contextlib.suppress(StorageError):
        store.delete(key)
