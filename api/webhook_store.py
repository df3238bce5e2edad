"""The durable webhook schedule, in the API's database: one delivery per job and final state, and every attempt.

A delivery is created when a materialiser sees a job end (once, whichever replica sees it: the event id is the
primary key), and claimed by one sender at a time through a lease, so with several replicas each event is sent by
one of them, and a sender that dies mid-attempt leaves it to another once the lease runs out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from api.database import iso
from schemas import WebhookAttempt, WebhookDelivery


@dataclass(frozen=True)
class Claimed:
    event_id: str
    job_id: str
    type: str
    url: str
    attempts: int
    """Attempts made before this one."""


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def schedule(self, *, job_id: str, status: str, url: str) -> None:
        """The job's webhook for `status`; nothing if it is scheduled already."""
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO webhook_deliveries (event_id, job_id, type, url, state, created_at, next_attempt_at,
                        attempts)
                    VALUES (:event_id, :job, :type, :url, 'pending', :created, :due, 0)
                    ON CONFLICT (event_id) DO NOTHING"""
                ),
                {
                    "event_id": f"msg_{job_id}_{status}",
                    "job": job_id,
                    "type": f"transcription.{status}",
                    "url": url,
                    "created": iso(datetime.now(UTC)),
                    "due": time.time(),
                },
            )

    def claim(self, lease_s: float) -> Claimed | None:
        """The most overdue pending delivery, leased to this sender for `lease_s`; None when nothing is due."""
        now = time.time()
        with self.engine.begin() as db:
            row = db.execute(
                text(
                    """UPDATE webhook_deliveries SET lease_until = :until
                    WHERE event_id = (
                        SELECT event_id FROM webhook_deliveries
                        WHERE state = 'pending' AND next_attempt_at <= :now
                            AND (lease_until IS NULL OR lease_until < :now)
                        ORDER BY next_attempt_at LIMIT 1
                    ) AND (lease_until IS NULL OR lease_until < :now)
                    RETURNING event_id, job_id, type, url, attempts"""
                ),
                {"now": now, "until": now + lease_s},
            ).first()
        return Claimed(*row) if row else None

    def postpone(self, event_id: str, seconds: float) -> None:
        """Not an attempt: the job is not ready to be described yet."""
        with self.engine.begin() as db:
            db.execute(
                text("UPDATE webhook_deliveries SET next_attempt_at = :due, lease_until = NULL WHERE event_id = :id"),
                {"id": event_id, "due": time.time() + seconds},
            )

    def record(
        self,
        claimed: Claimed,
        attempt: WebhookAttempt,
        *,
        state: str,
        retry_in: float | None,
    ) -> None:
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO webhook_attempts (event_id, attempt, at, status_code, latency_ms, error)
                    VALUES (:id, :n, :at, :code, :ms, :error) ON CONFLICT (event_id, attempt) DO NOTHING"""
                ),
                {
                    "id": claimed.event_id,
                    "n": attempt.attempt,
                    "at": iso(attempt.at),
                    "code": attempt.status_code,
                    "ms": attempt.latency_ms,
                    "error": attempt.error,
                },
            )
            db.execute(
                text(
                    """UPDATE webhook_deliveries SET state = :state, attempts = :n, lease_until = NULL,
                        next_attempt_at = :due WHERE event_id = :id"""
                ),
                {
                    "id": claimed.event_id,
                    "state": state,
                    "n": attempt.attempt,
                    "due": time.time() + (retry_in or 0.0),
                },
            )

    def for_job(self, job_id: str) -> list[WebhookDelivery]:
        with self.engine.connect() as db:
            deliveries = db.execute(
                text(
                    """SELECT event_id, type, url, state, next_attempt_at FROM webhook_deliveries
                    WHERE job_id = :job ORDER BY created_at"""
                ),
                {"job": job_id},
            ).all()
            out = []
            for event_id, kind, url, state, due in deliveries:
                attempts = db.execute(
                    text(
                        """SELECT attempt, at, status_code, latency_ms, error FROM webhook_attempts
                        WHERE event_id = :id ORDER BY attempt"""
                    ),
                    {"id": event_id},
                ).all()
                out.append(
                    WebhookDelivery(
                        event_id=event_id,
                        type=kind,
                        url=url,
                        state=state,
                        next_attempt_at=datetime.fromtimestamp(due, UTC) if state == "pending" else None,
                        attempts=[
                            WebhookAttempt(
                                attempt=n,
                                at=datetime.fromisoformat(at),
                                status_code=code,
                                latency_ms=ms,
                                error=error,
                            )
                            for n, at, code, ms, error in attempts
                        ],
                    )
                )
        return out
