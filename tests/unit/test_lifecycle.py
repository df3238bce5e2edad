"""The job lifecycle in the job store (deleting, filtering, retention) and the live feeds, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from api.jobstore import JobStore
from api.live import Change, JobFeeds
from api.retention import expire_audio
from api.watch import JobWatcher
from ingest import LocalObjectStore, audio_key
from schemas import AudioRef, Job, JobStatus, JobStatusChanged, Segment, SegmentTranscribed, TranscriptionRequested

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _request(job_id: str, at: datetime = T0) -> TranscriptionRequested:
    return TranscriptionRequested(job_id=job_id, audio=AudioRef(key=audio_key(job_id)), occurred_at=at)


def _segment(job_id: str, i: int) -> SegmentTranscribed:
    segment = Segment(id=i, start=i, end=i + 1, text=f" part {i}", avg_logprob=-0.1, no_speech_prob=0.0)
    return SegmentTranscribed(job_id=job_id, segment=segment)


def _status(job_id: str, status: JobStatus, at: datetime = T0, **fields: object) -> JobStatusChanged:
    return JobStatusChanged.model_validate({"job_id": job_id, "status": status, "occurred_at": at, **fields})


def test_a_deleted_job_stays_deleted_whatever_events_come_after(engine: Engine) -> None:
    jobs = JobStore(engine)
    jobs.record_request(_request("j1"))
    jobs.apply_status(_status("j1", JobStatus.PROCESSING, chunks_total=3))
    jobs.upsert_segment(_segment("j1", 0))
    assert jobs.delete("j1") == (audio_key("j1"), 3)
    assert jobs.get("j1") is None
    # The workers had not heard of the deletion yet: their events, and a redelivered request, change nothing.
    jobs.record_request(_request("j1"))
    jobs.upsert_segment(_segment("j1", 1))
    assert jobs.apply_status(_status("j1", JobStatus.COMPLETED, segment_count=2)) is None
    assert jobs.get("j1") is None and jobs.segments_from("j1", 0) == []
    assert jobs.page(limit=10) == ([], False)
    assert jobs.delete("j1") == (None, 0)  # twice is fine


def test_listing_filters_by_state_and_creation_time_and_leaves_out_transcripts(engine: Engine) -> None:
    jobs = JobStore(engine)
    for n, status in enumerate([JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED]):
        job_id = f"j{n}"
        jobs.record_request(_request(job_id, T0 + timedelta(hours=n)))
        if status is JobStatus.COMPLETED:
            jobs.upsert_segment(_segment(job_id, 0))
            jobs.apply_status(_status(job_id, status, segment_count=1))
        elif status is not JobStatus.QUEUED:
            jobs.apply_status(_status(job_id, status))

    def ids(found: tuple[list[Job], bool]) -> list[str]:
        return [j.id for j in found[0]]

    assert ids(jobs.page(limit=10, statuses=[JobStatus.COMPLETED, JobStatus.FAILED])) == ["j3", "j2"]
    assert ids(jobs.page(limit=10, created_after=T0 + timedelta(hours=1))) == ["j3", "j2", "j1"]
    assert ids(jobs.page(limit=10, created_before=T0 + timedelta(hours=1))) == ["j0"]
    summaries, _ = jobs.page(limit=10, statuses=[JobStatus.COMPLETED], with_result=False)
    assert summaries[0].status is JobStatus.COMPLETED and summaries[0].result is None
    full = jobs.get("j2")
    assert full is not None and full.result is not None and full.result.text == "part 0"


def test_retention_deletes_old_finished_uploads_only(engine: Engine, tmp_path: Path) -> None:
    jobs, store = JobStore(engine), LocalObjectStore(tmp_path / "objects")
    now = T0 + timedelta(days=40)
    for job_id, status, at in [
        ("old_done", JobStatus.COMPLETED, T0),
        ("old_failed", JobStatus.FAILED, T0),
        ("old_running", JobStatus.PROCESSING, T0),
        ("new_done", JobStatus.COMPLETED, now - timedelta(days=1)),
    ]:
        jobs.record_request(_request(job_id, at))
        store.put(audio_key(job_id), io.BytesIO(b"audio"), length=5)
        if status is JobStatus.COMPLETED:
            jobs.upsert_segment(_segment(job_id, 0))
        jobs.apply_status(_status(job_id, status, at=at, segment_count=1))
    assert expire_audio(jobs, store, days=30, now=now) == 2
    kept = {
        job_id for job_id in ("old_done", "old_failed", "old_running", "new_done") if store.exists(audio_key(job_id))
    }
    assert kept == {"old_running", "new_done"}
    old = jobs.get("old_done")
    assert old is not None and old.result is not None  # the transcript stays
    assert expire_audio(jobs, store, days=30, now=now) == 0  # done once


def test_many_listeners_of_one_job_cost_one_read_per_change(engine: Engine) -> None:
    jobs = JobStore(engine)
    reads: list[str] = []
    original = jobs.get

    def counting_get(job_id: str, *, with_result: bool = True) -> object:
        reads.append(job_id)
        return original(job_id, with_result=with_result)

    jobs.get = counting_get  # type: ignore[assignment,method-assign]
    jobs.record_request(_request("live"))

    async def scenario() -> tuple[list[list[Change]], list[Change]]:
        watcher = JobWatcher()
        watcher.bind(asyncio.get_running_loop())
        feeds = JobFeeds(jobs, watcher)

        async def listen(after: int = 0) -> list[Change]:
            return [change async for change in feeds.follow("live", after)]

        listeners = [asyncio.create_task(listen()) for _ in range(20)]
        await asyncio.sleep(0.3)
        for event in (_status("live", JobStatus.PROCESSING), _segment("live", 0), _segment("live", 1)):
            if isinstance(event, SegmentTranscribed):
                jobs.upsert_segment(event)
            else:
                jobs.apply_status(event)
            watcher.notify("live")
            await asyncio.sleep(0.3)
        late = asyncio.create_task(listen(after=1))  # reconnects having seen one segment
        await asyncio.sleep(0.3)
        jobs.apply_status(_status("live", JobStatus.COMPLETED, segment_count=2))
        watcher.notify("live")
        return await asyncio.gather(*listeners), await late

    everyone, late = asyncio.run(scenario())
    for changes in everyone:
        assert [s.text for c in changes for s in c.segments] == [" part 0", " part 1"]
        assert changes[-1].job.status is JobStatus.COMPLETED and changes[-1].job.result is None
    assert [s.text for c in late for s in c.segments] == [" part 1"] and late[-1].final
    assert len(reads) <= 8, reads  # one read per change for all twenty listeners, not twenty
