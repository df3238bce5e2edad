"""The job store: materialised job state in the API's database, written only through idempotent upserts.

Every write is keyed by what the event is about — the job id, or (job id, segment position) — so replaying any
event, in any order across topics, leaves the same rows. A job's status only moves forward; a job reads as
completed only once all of its `segment_count` segments are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Engine, text

from api.database import Dialect, iso
from schemas import (
    Job,
    JobError,
    JobResult,
    JobStatus,
    JobStatusChanged,
    PostprocessReport,
    Segment,
    SegmentTranscribed,
    SpeakerTurn,
    Transcript,
    TranscriptionOptions,
    TranscriptionRequested,
)

_TURNS: TypeAdapter[list[SpeakerTurn]] = TypeAdapter(list[SpeakerTurn])


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
    webhook_url: str | None = None


class JobStore:
    """Thread-safe (a pool of connections): the materialiser thread writes while request handlers read."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = Dialect.of(engine)

    def record_request(self, event: TranscriptionRequested) -> None:
        created = iso(event.occurred_at)
        with self.engine.begin() as db:
            db.execute(
                text(
                    f"""INSERT INTO jobs (id, created_at, updated_at, status, status_rank, progress, filename,
                        audio_key, options, owner, review, webhook_url)
                    SELECT :id, :created, :created, 'queued', 0, 0, :filename, :audio_key, :options, :owner, 0,
                        :webhook_url
                    WHERE NOT EXISTS (SELECT 1 FROM deleted_jobs WHERE id = :id)
                    ON CONFLICT (id) DO UPDATE SET
                        created_at = {self._sql.least}(jobs.created_at, excluded.created_at),
                        filename = excluded.filename,
                        audio_key = excluded.audio_key,
                        options = excluded.options,
                        owner = excluded.owner,
                        webhook_url = excluded.webhook_url"""
                ),
                {
                    "id": event.job_id,
                    "created": created,
                    "filename": event.audio.filename,
                    "audio_key": event.audio.key,
                    "options": event.options.model_dump_json(),
                    "owner": event.owner,
                    "webhook_url": event.webhook_url,
                },
            )

    def apply_status(self, event: JobStatusChanged) -> Transition | None:
        """Moves the job forward; returns what changed when its status did (None for a repeat or a late event).

        The rank moves in one conditional UPDATE, so of several materialisers applying the same event (replicas on
        one PostgreSQL) exactly one sees the transition."""
        at = iso(event.occurred_at)
        status = event.status
        greatest = self._sql.greatest
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO jobs (id, created_at, updated_at, status, status_rank, progress, review)
                    SELECT :id, :at, :at, 'queued', 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM deleted_jobs WHERE id = :id)
                    ON CONFLICT (id) DO NOTHING"""
                ),
                {"id": event.job_id, "at": at},
            )
            moved = db.execute(
                text(
                    """UPDATE jobs SET status = :status, status_rank = :rank
                    WHERE id = :id AND status_rank < :rank RETURNING created_at"""
                ),
                {"id": event.job_id, "status": status.value, "rank": status.rank},
            ).first()
            updated = db.execute(
                text(
                    f"""UPDATE jobs SET progress = {greatest}(progress, :progress),
                        updated_at = {greatest}(updated_at, :at),
                        model = coalesce(:model, model), language = coalesce(:language, language),
                        language_probability = coalesce(:language_probability, language_probability),
                        duration = coalesce(:duration, duration),
                        segment_count = coalesce(:segment_count, segment_count),
                        error = coalesce(:error, error), chunks_total = coalesce(:chunks_total, chunks_total),
                        chunks_done = {greatest}(coalesce(:chunks_done, 0), coalesce(chunks_done, 0)),
                        audio_seconds_done = {greatest}(
                            coalesce(:audio_seconds_done, 0), coalesce(audio_seconds_done, 0)
                        ),
                        recovered_stretches = coalesce(:recovered_stretches, recovered_stretches),
                        postprocess = coalesce(:postprocess, postprocess),
                        speaker_turns = coalesce(:speaker_turns, speaker_turns)
                    WHERE id = :id AND status = :status AND (:moved OR NOT :terminal)
                    RETURNING model, language, duration, webhook_url"""
                ),
                {
                    "id": event.job_id,
                    "status": status.value,
                    "moved": moved is not None,
                    "terminal": status.terminal,
                    "progress": event.progress,
                    "at": at,
                    "model": event.model,
                    "language": event.language,
                    "language_probability": event.language_probability,
                    "duration": event.duration,
                    "segment_count": event.segment_count,
                    "error": event.error.model_dump_json() if event.error else None,
                    "chunks_total": event.chunks_total,
                    "chunks_done": event.chunks_done,
                    "audio_seconds_done": event.audio_seconds_done,
                    "recovered_stretches": event.recovered_stretches,
                    "postprocess": event.postprocess.model_dump_json() if event.postprocess else None,
                    "speaker_turns": (
                        _TURNS.dump_json(event.speaker_turns).decode() if event.speaker_turns is not None else None
                    ),
                },
            ).first()
        if moved is None or updated is None:
            return None
        return Transition(
            job_id=event.job_id,
            status=status,
            created_at=datetime.fromisoformat(moved[0]),
            at=event.occurred_at,
            model=updated[0],
            language=updated[1],
            duration=updated[2],
            webhook_url=updated[3],
        )

    def mark_for_review(self, job_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(text("UPDATE jobs SET review = 1 WHERE id = :id"), {"id": job_id})

    def count_by_status(self) -> dict[str, int]:
        with self.engine.connect() as db:
            return {
                row[0]: int(row[1]) for row in db.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
            }

    def ping(self) -> None:
        """Raises if the database does not answer."""
        with self.engine.connect() as db:
            db.execute(text("SELECT 1"))

    def upsert_segment(self, event: SegmentTranscribed) -> None:
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO segments (job_id, position, body)
                    SELECT :job, :position, :body WHERE NOT EXISTS (SELECT 1 FROM deleted_jobs WHERE id = :job)
                    ON CONFLICT (job_id, position) DO UPDATE SET body = excluded.body"""
                ),
                {"job": event.job_id, "position": event.segment.id, "body": event.segment.model_dump_json()},
            )

    def get(self, job_id: str, *, with_result: bool = True) -> Job | None:
        """The job; `with_result=False` leaves out the transcript (listings, live events)."""
        with self.engine.connect() as db:
            row = db.execute(text("SELECT * FROM jobs WHERE id = :id"), {"id": job_id}).mappings().first()
            if row is None:
                return None
            record = dict(row)
            if record["status"] != "completed":
                return _to_job(record, None, complete=False)
            if not with_result:
                stored = db.execute(
                    text("SELECT count(*) FROM segments WHERE job_id = :job AND position < :count"),
                    {"job": job_id, "count": record["segment_count"] or 0},
                ).scalar()
                return _to_job(record, None, complete=stored == (record["segment_count"] or 0))
            segments = _segments(db, job_id, record["segment_count"])
        return _to_job(record, segments, complete=segments is not None)

    def speaker_turns(self, job_id: str) -> list[SpeakerTurn] | None:
        """Who spoke when in a completed diarized job; None when none were stored."""
        with self.engine.connect() as db:
            stored = db.execute(text("SELECT speaker_turns FROM jobs WHERE id = :id"), {"id": job_id}).scalar()
        return _TURNS.validate_json(str(stored)) if stored else None

    def delete(self, job_id: str) -> tuple[str | None, int]:
        """Removes the job's rows and transcript, and remembers the id so that its events still on Kafka cannot
        bring it back. Returns the job's audio key and chunk count, to delete its objects."""
        with self.engine.begin() as db:
            row = db.execute(text("SELECT audio_key, chunks_total FROM jobs WHERE id = :id"), {"id": job_id}).first()
            db.execute(
                text("INSERT INTO deleted_jobs (id, deleted_at) VALUES (:id, :at) ON CONFLICT (id) DO NOTHING"),
                {"id": job_id, "at": iso(datetime.now(UTC))},
            )
            for table, column in (("segments", "job_id"), ("job_scores", "job_id"), ("jobs", "id")):
                db.execute(text(f"DELETE FROM {table} WHERE {column} = :id"), {"id": job_id})
        return (row[0], int(row[1] or 0)) if row else (None, 0)

    def expired_audio(self, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(job id, audio key) of finished jobs last changed before `before` whose uploaded audio is still kept."""
        with self.engine.connect() as db:
            rows = db.execute(
                text(
                    """SELECT id, audio_key FROM jobs WHERE status IN ('completed', 'failed')
                    AND updated_at < :before AND audio_deleted_at IS NULL
                    AND (audio_key LIKE 'uploads/%' OR audio_key LIKE 'live/%')
                    ORDER BY updated_at LIMIT :limit"""
                ),
                {"before": iso(before), "limit": limit},
            ).all()
        return [(row[0], row[1]) for row in rows]

    def audio_of(self, job_id: str) -> tuple[str | None, str | None, bool]:
        """(audio key, file name, whether retention already deleted it) of a job."""
        with self.engine.connect() as db:
            row = db.execute(
                text("SELECT audio_key, filename, audio_deleted_at FROM jobs WHERE id = :id"), {"id": job_id}
            ).first()
        return (row[0], row[1], row[2] is not None) if row else (None, None, False)

    def audio_deleted(self, job_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(
                text("UPDATE jobs SET audio_deleted_at = :at WHERE id = :id"),
                {"id": job_id, "at": iso(datetime.now(UTC))},
            )

    def page(
        self,
        *,
        limit: int,
        after: str | None = None,
        owner: str | None = None,
        review_pending: bool = False,
        statuses: Sequence[JobStatus] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        with_result: bool = True,
    ) -> tuple[list[Job], bool]:
        """Newest first; `after` is the id of the last job of the previous page; `owner` keeps that key's jobs;
        `review_pending` keeps completed jobs sampled for review that have no score yet (`api.accuracy`'s table);
        `statuses` and the creation bounds filter."""
        mine = "" if owner is None else " AND owner = :owner"
        wanted = mine
        if review_pending:
            wanted += " AND review = 1 AND status = 'completed' AND id NOT IN (SELECT job_id FROM job_scores)"
        values: dict[str, Any] = {"owner": owner, "limit": limit + 1, "after": after}
        if statuses:
            names = [f":status_{n}" for n in range(len(statuses))]
            wanted += f" AND status IN ({', '.join(names)})"
            values.update({name[1:]: status.value for name, status in zip(names, statuses, strict=True)})
        if created_after is not None:
            wanted += " AND created_at >= :created_after"
            values["created_after"] = iso(created_after)
        if created_before is not None:
            wanted += " AND created_at < :created_before"
            values["created_before"] = iso(created_before)
        with self.engine.connect() as db:
            if after is not None:
                anchor = db.execute(text(f"SELECT created_at FROM jobs WHERE id = :after{mine}"), values).first()
                if anchor is None:
                    raise KeyError(after)
                values["at"] = anchor[0]
                query = f"""SELECT id FROM jobs WHERE (created_at < :at OR (created_at = :at AND id < :after)){wanted}
                    ORDER BY created_at DESC, id DESC LIMIT :limit"""
            else:
                query = f"SELECT id FROM jobs WHERE 1 = 1{wanted} ORDER BY created_at DESC, id DESC LIMIT :limit"
            rows = db.execute(text(query), values).all()
        found = (self.get(job_id, with_result=with_result) for (job_id,) in rows[:limit])
        return [job for job in found if job is not None], len(rows) > limit

    def segments_from(self, job_id: str, start: int) -> list[Segment]:
        """Segments at positions start, start+1, … up to the first one not stored yet (for streaming in order)."""
        with self.engine.connect() as db:
            rows = db.execute(
                text(
                    "SELECT position, body FROM segments WHERE job_id = :job AND position >= :start ORDER BY position"
                ),
                {"job": job_id, "start": start},
            ).all()
        out = []
        for expected, (position, body) in enumerate(rows, start=start):
            if position != expected:
                break
            out.append(Segment.model_validate_json(body))
        return out


def _segments(db: Connection, job_id: str, count: int | None) -> list[Segment] | None:
    """All `count` segments in order, or None while some have not arrived."""
    if count is None:
        return None
    rows = db.execute(
        text("SELECT body FROM segments WHERE job_id = :job AND position < :count ORDER BY position"),
        {"job": job_id, "count": count},
    ).all()
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
    """The segments' text; paragraphs (from the paragraphs step) apart by a blank line."""
    paragraphs: list[list[str]] = []
    previous: int | None = None
    for segment in segments:
        if not (text := segment.text.strip()):
            continue
        if not paragraphs or (segment.paragraph is not None and segment.paragraph != previous):
            paragraphs.append([])
        paragraphs[-1].append(text)
        previous = segment.paragraph
    return "\n\n".join(" ".join(p) for p in paragraphs)


def _to_job(record: dict[str, Any], segments: list[Segment] | None, *, complete: bool) -> Job:
    status = JobStatus(str(record["status"]))
    progress = float(record["progress"])
    result = None
    if status is JobStatus.COMPLETED:
        if not complete:
            # Completion overtook some of its segments (different topics): not visibly done yet.
            status, progress = JobStatus.PROCESSING, min(progress, 0.99)
        elif segments is not None:
            words = [w for s in segments for w in s.words]
            result = JobResult(text=transcript_text(segments), segments=segments, words=words)
    options = record["options"]
    error = record["error"]
    postprocess = record.get("postprocess")
    turns = record.get("speaker_turns")
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
        postprocess=PostprocessReport.model_validate_json(str(postprocess)) if postprocess else None,
        speaker_turns=_TURNS.validate_json(str(turns)) if turns and result is not None else None,
        result=result,
    )
