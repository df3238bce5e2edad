"""Per-key rate limits and quotas, counted with the `limits` package in storage every API replica shares.

Two limits: requests per minute (every authenticated request) and audio minutes per day (each accepted upload
costs its probed duration). Both are fixed windows that start at a key's first hit. The counters live in the API's
database by default (a `limits` storage on SQLAlchemy, below: SQLite or PostgreSQL), or wherever
`SCRIBEFLOW_LIMITS__STORAGE_URI` points (`redis://…` and the other backends `limits` ships).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from api.settings import LimitSettings
from schemas import ApiKey


class SqlStorage(Storage):
    """Counters in the API's database; each increment is one atomic statement, so replicas sharing the database
    agree."""

    STORAGE_SCHEME = ["scribeflow+sql"]

    def __init__(self, engine: Engine) -> None:
        super().__init__(None, False)
        self.engine = engine

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.engine.begin() as db:
            count = db.execute(
                text(
                    """INSERT INTO rate_counters (key, count, expires_at) VALUES (:key, :amount, :expires)
                    ON CONFLICT (key) DO UPDATE SET
                        count = CASE WHEN rate_counters.expires_at <= :now THEN excluded.count
                            ELSE rate_counters.count + excluded.count END,
                        expires_at = CASE WHEN rate_counters.expires_at <= :now THEN excluded.expires_at
                            ELSE rate_counters.expires_at END
                    RETURNING count"""
                ),
                {"key": key, "amount": amount, "expires": now + expiry, "now": now},
            ).scalar_one()
        return int(count)

    def get(self, key: str) -> int:
        with self.engine.connect() as db:
            count = db.execute(
                text("SELECT count FROM rate_counters WHERE key = :key AND expires_at > :now"),
                {"key": key, "now": time.time()},
            ).scalar()
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as db:
            expires = db.execute(text("SELECT expires_at FROM rate_counters WHERE key = :key"), {"key": key}).scalar()
        now = time.time()
        return float(expires) if expires is not None and expires > now else now

    def check(self) -> bool:
        try:
            with self.engine.connect() as db:
                db.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as db:
            return db.execute(text("DELETE FROM rate_counters")).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as db:
            db.execute(text("DELETE FROM rate_counters WHERE key = :key"), {"key": key})


@dataclass(frozen=True)
class Exceeded:
    limit: str
    """`requests_per_minute` or `audio_minutes_per_day`."""
    allowed: float
    retry_after_s: int


class RateLimiter:
    def __init__(self, settings: LimitSettings, engine: Engine) -> None:
        self.settings = settings
        storage = storage_from_string(settings.storage_uri) if settings.storage_uri else None
        if storage is not None and not isinstance(storage, Storage):
            raise ValueError(f"{settings.storage_uri!r} names an asyncio storage; use its synchronous scheme")
        self.storage: Storage = storage or SqlStorage(engine)
        self._window = FixedWindowRateLimiter(self.storage)

    def request(self, key: ApiKey) -> Exceeded | None:
        """Counts one request of `key`; what it exceeded, if anything."""
        per_minute = key.limits.requests_per_minute or self.settings.requests_per_minute
        if per_minute is None:
            return None
        item = RateLimitItemPerMinute(per_minute)
        if self._window.hit(item, "requests", key.id):
            return None
        return Exceeded("requests_per_minute", per_minute, self._retry_after(item, "requests", key.id))

    def audio(self, key: ApiKey, seconds: float) -> Exceeded | None:
        """Charges `seconds` of audio to `key`'s daily quota unless that would exceed it."""
        per_day = key.limits.audio_minutes_per_day or self.settings.audio_minutes_per_day
        if per_day is None:
            return None
        item = RateLimitItemPerDay(math.ceil(per_day * 60))
        cost = max(1, math.ceil(seconds))
        if self._window.hit(item, "audio", key.id, cost=cost):
            return None
        # A refused upload costs nothing: give back what the hit just counted.
        self.storage.incr(item.key_for("audio", key.id), item.get_expiry(), amount=-cost)
        return Exceeded("audio_minutes_per_day", per_day, self._retry_after(item, "audio", key.id))

    def _retry_after(self, item: RateLimitItemPerMinute | RateLimitItemPerDay, *ids: str) -> int:
        reset = self._window.get_window_stats(item, *ids).reset_time
        return max(1, math.ceil(reset - time.time()))
