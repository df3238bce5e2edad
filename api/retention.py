"""Retention: the audio of finished jobs is deleted once it is older than `SCRIBEFLOW_RETENTION_DAYS`.

Transcripts stay (delete the job for that). Only audio the API stored is deleted, never an object a job merely
referenced. Every replica may run this: deleting twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from api.jobstore import JobStore
from ingest import ObjectStore, StorageError

log = logging.getLogger(__name__)


def expire_audio(jobs: JobStore, store: ObjectStore, days: float, *, now: datetime | None = None) -> int:
    """Deletes what is due now; returns how many jobs lost their audio."""
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    done = 0
    while batch := jobs.expired_audio(before):
        for job_id, key in batch:
            try:
                store.delete(key)
            except StorageError as e:
                log.warning("retention could not delete %s: %s", key, e)
                return done  # the store is down: try again next round
            jobs.audio_deleted(job_id)
            done += 1
    return done


async def run_retention(jobs: JobStore, store: ObjectStore, days: float, every_s: float) -> None:
    while True:
        try:
            deleted = await asyncio.to_thread(expire_audio, jobs, store, days)
            if deleted:
                log.info("retention deleted the audio of %d finished jobs older than %g days", deleted, days)
        except Exception:
            log.exception("retention round failed")
        await asyncio.sleep(every_s)
