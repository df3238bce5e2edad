"""Per-key rate limits and quotas, counted with the `limits` package in storage every API replica shares.

Two limits: requests per minute (every authenticated request) and audio minutes per day (each accepted upload
costs its probed duration). Both are fixed windows that start at a key's first hit. The counters live in the job
database by default (a `limits` storage backed by SQLite, below), or wherever `SCRIBEFLOW_LIMITS__STORAGE_URI`
points (`redis://…` and the other backends `limits` ships).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from limits import RateLimitItemPerDay, RateLimitItemPerMinute
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from api.settings import LimitSettings
from schemas import ApiKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
"""


class SqliteStorage(Storage):
    """Counters in a SQLite table; each increment is one atomic statement, so processes sharing the file agree."""

    STORAGE_SCHEME = ["scribeflow+sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        path = Path(str(options.get("path") or (uri or "").partition("://")[2]))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            row = self._db.execute(
                """
                INSERT INTO rate_counters (key, count, expires_at) VALUES (:key, :amount, :expires)
                ON CONFLICT (key) DO UPDATE SET
                    count = CASE WHEN expires_at <= :now THEN excluded.count ELSE count + excluded.count END,
                    expires_at = CASE WHEN expires_at <= :now THEN excluded.expires_at ELSE expires_at END
                RETURNING count
                """,
                {"key": key, "amount": amount, "expires": now + expiry, "now": now},
            ).fetchone()
        return int(row[0])

    def get(self, key: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count FROM rate_counters WHERE key = ? AND expires_at > ?", (key, time.time())
            ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        with self._lock:
            row = self._db.execute("SELECT expires_at FROM rate_counters WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row and row[0] > time.time() else time.time()

    def check(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._lock:
            return self._db.execute("DELETE FROM rate_counters").rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM rate_counters WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass(frozen=True)
class Exceeded:
    limit: str
    """`requests_per_minute` or `audio_minutes_per_day`."""
    allowed: float
    retry_after_s: int


class RateLimiter:
    def __init__(self, settings: LimitSettings, database_path: Path) -> None:
        self.settings = settings
        storage = storage_from_string(settings.storage_uri) if settings.storage_uri else None
        if storage is not None and not isinstance(storage, Storage):
            raise ValueError(f"{settings.storage_uri!r} names an asyncio storage; use its synchronous scheme")
        self.storage: Storage = storage or SqliteStorage(path=str(database_path))
        self._window = FixedWindowRateLimiter(self.storage)

    def close(self) -> None:
        if isinstance(self.storage, SqliteStorage):
            self.storage.close()

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
