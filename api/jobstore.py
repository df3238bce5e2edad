"""The job store: materialised job state in SQLite, written only through idempotent upserts.

Every write is keyed by what the event is about — the job id, or (job id, segment position) — so replaying any
event, in any order across topics, leaves the same rows. A job's status only moves forward; a job reads as
completed only once all of its `segment_count` segments are stored.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas import (
    Job,
    JobError,
    JobResult,
    JobStatus,
    JobStatusChanged,
    Segment,
    SegmentTranscribed,
    Transcript,
    TranscriptionOptions,
    TranscriptionRequested,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    filename TEXT,
    audio_key TEXT,
    options TEXT,
    language TEXT,
    language_probability REAL,
    duration REAL,
    model TEXT,
    segment_count INTEGER,
    error TEXT,
    chunks_total INTEGER,
    chunks_done INTEGER,
    audio_seconds_done REAL,
    recovered_stretches INTEGER,
    owner TEXT,
    review INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_age ON jobs (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS segments (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);
"""


_ADDED_COLUMNS = {
    "chunks_total": "INTEGER",
    "chunks_done": "INTEGER",
    "audio_seconds_done": "REAL",
    "recovered_stretches": "INTEGER",
    "owner": "TEXT",
    "review": "INTEGER NOT NULL DEFAULT 0",
}


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A database from before chunked transcription or API keys gets their columns; nothing else changes."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")


@dataclass(frozen=True)
class Transition:
    """A job's status changed (seen once, by whichever materialiser applied it first)."""

    job_id: str
    status: JobStatus
    created_at: datetime
    at: datetime
    model: str | None
    language: str | None
    duration: float | None


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class JobStore:
    """Thread-safe: the materialiser thread writes while request handlers read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        _add_missing_columns(db)
        db.execute("CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at DESC, id DESC)")
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("job store is not open")
        return self._db

    def record_request(self, event: TranscriptionRequested) -> None:
        created = _ts(event.occurred_at)
        with self._lock:
            self.db.execute(
                """
                INSERT INTO jobs (id, created_at, updated_at, status, status_rank, filename, audio_key, options, owner)
                VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    created_at = min(created_at, excluded.created_at),
                    filename = excluded.filename,
                    audio_key = excluded.audio_key,
                    options = excluded.options,
                    owner = excluded.owner
                """,
                (
                    event.job_id,
                    created,
                    created,
                    event.audio.filename,
                    event.audio.key,
                    event.options.model_dump_json(),
                    event.owner,
                ),
            )

    def apply_status(self, event: JobStatusChanged) -> Transition | None:
        """Moves the job forward; returns what changed when its status did (None for a repeat or a late event)."""
        at = _ts(event.occurred_at)
        status = event.status
        error = event.error.model_dump_json() if event.error else None
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    """INSERT INTO jobs (id, created_at, updated_at, status, status_rank) VALUES (?, ?, ?, 'queued', 0)
                    ON CONFLICT (id) DO NOTHING""",
                    (event.job_id, at, at),
                )
                row = db.execute(
                    "SELECT status_rank, progress, status, created_at FROM jobs WHERE id = ?", (event.job_id,)
                ).fetchone()
                rank, progress, before, created = row
                moved = None
                if status.rank > rank or (status.rank == rank and not status.terminal):
                    db.execute(
                        """UPDATE jobs SET status = ?, status_rank = ?, progress = ?, updated_at = max(updated_at, ?),
                            model = coalesce(?, model), language = coalesce(?, language),
                            language_probability = coalesce(?, language_probability),
                            duration = coalesce(?, duration), segment_count = coalesce(?, segment_count),
                            error = coalesce(?, error), chunks_total = coalesce(?, chunks_total),
                            chunks_done = max(coalesce(?, 0), coalesce(chunks_done, 0)),
                            audio_seconds_done = max(coalesce(?, 0), coalesce(audio_seconds_done, 0)),
                            recovered_stretches = coalesce(?, recovered_stretches)
                        WHERE id = ?""",
                        (
                            status.value,
                            status.rank,
                            max(progress, event.progress),
                            at,
                            event.model,
                            event.language,
                            event.language_probability,
                            event.duration,
                            event.segment_count,
                            error,
                            event.chunks_total,
                            event.chunks_done,
                            event.audio_seconds_done,
                            event.recovered_stretches,
                            event.job_id,
                        ),
                    )
                    if status.value != before:
                        found = db.execute(
                            "SELECT model, language, duration FROM jobs WHERE id = ?", (event.job_id,)
                        ).fetchone()
                        moved = Transition(
                            job_id=event.job_id,
                            status=status,
                            created_at=datetime.fromisoformat(created),
                            at=event.occurred_at,
                            model=found[0],
                            language=found[1],
                            duration=found[2],
                        )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return moved

    def mark_for_review(self, job_id: str) -> None:
        with self._lock:
            self.db.execute("UPDATE jobs SET review = 1 WHERE id = ?", (job_id,))

    def count_by_status(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())

    def ping(self) -> None:
        """Raises if the database does not answer."""
        with self._lock:
            self.db.execute("SELECT 1").fetchone()

    def upsert_segment(self, event: SegmentTranscribed) -> None:
        with self._lock:
            self.db.execute(
                """INSERT INTO segments (job_id, position, body) VALUES (?, ?, ?)
                ON CONFLICT (job_id, position) DO UPDATE SET body = excluded.body""",
                (event.job_id, event.segment.id, event.segment.model_dump_json()),
            )

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            cursor = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            names = [d[0] for d in cursor.description]
            record = dict(zip(names, row, strict=True))
            segments = self._segments(job_id, record["segment_count"]) if record["status"] == "completed" else None
        return _to_job(record, segments)

    def page(
        self, *, limit: int, after: str | None = None, owner: str | None = None, review_pending: bool = False
    ) -> tuple[list[Job], bool]:
        """Newest first; `after` is the id of the last job of the previous page; `owner` keeps that key's jobs;
        `review_pending` keeps completed jobs sampled for review that have no score yet (`api.accuracy`'s table)."""
        mine = "" if owner is None else " AND owner = :owner"
        wanted = mine
        if review_pending:
            wanted += " AND review = 1 AND status = 'completed' AND id NOT IN (SELECT job_id FROM job_scores)"
        with self._lock:
            if after is not None:
                anchor = self.db.execute(
                    f"SELECT created_at FROM jobs WHERE id = :after{mine}", {"after": after, "owner": owner}
                ).fetchone()
                if anchor is None:
                    raise KeyError(after)
                rows = self.db.execute(
                    f"""SELECT id FROM jobs WHERE (created_at, id) < (:at, :after){wanted}
                    ORDER BY created_at DESC, id DESC LIMIT :limit""",
                    {"at": anchor[0], "after": after, "owner": owner, "limit": limit + 1},
                ).fetchall()
            else:
                rows = self.db.execute(
                    f"SELECT id FROM jobs WHERE 1 = 1{wanted} ORDER BY created_at DESC, id DESC LIMIT :limit",
                    {"owner": owner, "limit": limit + 1},
                ).fetchall()
        jobs = [job for (job_id,) in rows[:limit] if (job := self.get(job_id)) is not None]
        return jobs, len(rows) > limit

    def segments_from(self, job_id: str, start: int) -> list[Segment]:
        """Segments at positions start, start+1, … up to the first one not stored yet (for streaming in order)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT position, body FROM segments WHERE job_id = ? AND position >= ? ORDER BY position",
                (job_id, start),
            ).fetchall()
        found = []
        for expected, (position, body) in enumerate(rows, start=start):
            if position != expected:
                break
            found.append(Segment.model_validate_json(body))
        return found

    def _segments(self, job_id: str, count: int | None) -> list[Segment] | None:
        """All `count` segments, or None if some have not arrived yet."""
        if count is None:
            return None
        rows = self.db.execute(
            "SELECT body FROM segments WHERE job_id = ? AND position < ? ORDER BY position", (job_id, count)
        ).fetchall()
        if len(rows) < count:
            return None
        return [Segment.model_validate_json(body) for (body,) in rows]


def transcript_of(job: Job) -> Transcript | None:
    """The finished transcript of a job already read, or None while it is not (visibly) completed."""
    if job.result is None:
        return None
    return Transcript(
        text=job.result.text,
        language=job.language,
        language_probability=job.language_probability,
        duration=job.duration,
        task=(job.options or TranscriptionOptions()).task,
        segments=job.result.segments,
    )


def transcript_text(segments: list[Segment]) -> str:
    return " ".join(text for s in segments if (text := s.text.strip()))


def _to_job(record: dict[str, Any], segments: list[Segment] | None) -> Job:
    status = JobStatus(str(record["status"]))
    progress = float(record["progress"])
    result = None
    if status is JobStatus.COMPLETED:
        if segments is None:
            # Completion overtook some of its segments (different topics): not visibly done yet.
            status, progress = JobStatus.PROCESSING, min(progress, 0.99)
        else:
            words = [w for s in segments for w in s.words]
            result = JobResult(text=transcript_text(segments), segments=segments, words=words)
    options = record["options"]
    error = record["error"]
    return Job(
        id=str(record["id"]),
        status=status,
        created_at=datetime.fromisoformat(str(record["created_at"])),
        updated_at=datetime.fromisoformat(str(record["updated_at"])),
        progress=progress,
        filename=record["filename"],
        owner=record["owner"],
        options=TranscriptionOptions.model_validate_json(str(options)) if options else None,
        language=record["language"],
        language_probability=record["language_probability"],
        duration=record["duration"],
        model=record["model"],
        error=JobError.model_validate_json(str(error)) if error else None,
        chunks_total=record["chunks_total"],
        chunks_done=record["chunks_done"] if record["chunks_total"] is not None else None,
        audio_seconds_done=record["audio_seconds_done"] if record["chunks_total"] is not None else None,
        recovered_stretches=record["recovered_stretches"],
        result=result,
    )
