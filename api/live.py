"""Live job events: one reader per job, any number of listeners.

The first listener of a job starts its feed; the feed reads the job store when the materialiser says the job
changed (and every few seconds, for events another replica applied), and hands each change to every listener.
So a hundred listeners on one job cost the database what one does. A listener that joins late gets the job's
history first: its current status and every segment so far, or those after the one it last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from api.jobstore import JobStore
from api.watch import JobWatcher
from schemas import Job, Segment

log = logging.getLogger(__name__)

RECHECK_S = 5.0
"""How often a feed looks at the job store without being told to: changes applied by another API replica."""


@dataclass(frozen=True)
class Change:
    """What a listener is sent: the job as it is now (without its transcript), and segments it has not seen."""

    job: Job
    segments: list[Segment]
    first: int
    """Position of the first of `segments`."""

    @property
    def final(self) -> bool:
        return self.job.status.terminal


@dataclass
class _Feed:
    job_id: str
    listeners: set[asyncio.Queue[Change | None]] = field(default_factory=set)
    job: Job | None = None
    segments: list[Segment] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class JobFeeds:
    def __init__(self, jobs: JobStore, watcher: JobWatcher) -> None:
        self._jobs = jobs
        self._watcher = watcher
        self._feeds: dict[str, _Feed] = {}

    async def follow(self, job_id: str, after: int = 0) -> AsyncIterator[Change]:
        """The job's history from segment `after` on, then each change, until the job ends (or it is deleted)."""
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed(job_id)
            feed.task = asyncio.create_task(self._run(feed), name=f"feed-{job_id}")
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        feed.listeners.add(queue)
        try:
            if feed.job is not None:  # the history, from what the feed already read
                yield Change(feed.job, feed.segments[after:], after)
                if feed.job.status.terminal:
                    return
                after = len(feed.segments)
            while (change := await queue.get()) is not None:
                if change.first + len(change.segments) < after:
                    continue  # history this listener already had
                skip = max(0, after - change.first)
                yield Change(change.job, change.segments[skip:], change.first + skip)
                after = change.first + len(change.segments)
                if change.final:
                    return
        finally:
            feed.listeners.discard(queue)
            if not feed.listeners and feed.task is not None:
                feed.task.cancel()
                self._feeds.pop(job_id, None)

    async def _run(self, feed: _Feed) -> None:
        with self._watcher.watch(feed.job_id) as changed:
            while True:
                changed.clear()
                try:
                    job = await asyncio.to_thread(self._jobs.get, feed.job_id, with_result=False)
                    new = await asyncio.to_thread(self._jobs.segments_from, feed.job_id, len(feed.segments))
                except Exception:  # the database is away for a moment: look again, never report the job gone
                    log.exception("live feed of job %s could not read the job store", feed.job_id)
                    await asyncio.sleep(RECHECK_S)
                    continue
                if job is None:  # deleted
                    for queue in feed.listeners:
                        queue.put_nowait(None)
                    return
                if new or job != feed.job:
                    first = len(feed.segments)
                    feed.job, feed.segments = job, feed.segments + new
                    for queue in feed.listeners:
                        queue.put_nowait(Change(job, new, first))
                # A job reads completed only once all its segments are stored, and they were read after it.
                if job.status.terminal:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RECHECK_S)
