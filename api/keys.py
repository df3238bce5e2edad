"""API keys: created, listed and revoked by the CLI, checked by the API on every request.

A key reads `sfk_<id>_<secret>`. The id is public (it names the key in lists and owns its jobs); of the secret only
a SHA-256 digest is stored, compared in constant time. Keys are 192 random bits, so a slow password hash would add
latency to every request without making a stolen database easier to protect: there is nothing to guess.

The store lives in the job database, so the CLI works on it whether or not the API is running and every API
replica sharing that database sees a revocation on its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from schemas import ApiKey, KeyLimits

PREFIX = "sfk_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    limits TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


class UnknownKey(LookupError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    if not presented.startswith(PREFIX):
        return None
    key_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


class KeyStore:
    """Thread-safe; one SQLite connection per store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> KeyStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._db = db
        return self

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> KeyStore:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("key store is not open")
        return self._db

    def create(self, name: str, *, admin: bool = False, limits: KeyLimits | None = None) -> tuple[ApiKey, str]:
        """The new key's record and the key itself, which exists only in this return value."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24).replace("_", "-")
        record = ApiKey(id=key_id, name=name, admin=admin, limits=limits or KeyLimits(), created_at=datetime.now(UTC))
        with self._lock:
            self.db.execute(
                "INSERT INTO api_keys (id, name, secret_sha256, admin, limits, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, _digest(secret), int(admin), record.limits.model_dump_json(), _ts(record.created_at)),
            )
        return record, f"{PREFIX}{key_id}_{secret}"

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        with self._lock:
            rows = self.db.execute(
                f"SELECT id, name, admin, limits, created_at, revoked_at FROM api_keys {where} ORDER BY created_at"
            ).fetchall()
        return [_record(row) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        with self._lock:
            row = self.db.execute(
                "SELECT id, name, admin, limits, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise UnknownKey(key_id)
        return _record(row)

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            self.db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_ts(datetime.now(UTC)), key_id),
            )
        return self.get(key_id)

    def any_active(self) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def verify(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (malformed, unknown, wrong secret or revoked)."""
        parts = split_key(presented)
        if parts is None:
            return None
        key_id, secret = parts
        with self._lock:
            row = self.db.execute(
                "SELECT id, name, admin, limits, created_at, revoked_at, secret_sha256 FROM api_keys WHERE id = ?",
                (key_id,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[6], _digest(secret)):
            return None
        record = _record(row[:6])
        return record if record.active else None


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _record(row: tuple[object, ...]) -> ApiKey:
    key_id, name, admin, limits, created_at, revoked_at = row
    return ApiKey(
        id=str(key_id),
        name=str(name),
        admin=bool(admin),
        limits=KeyLimits.model_validate_json(str(limits)),
        created_at=datetime.fromisoformat(str(created_at)),
        revoked_at=datetime.fromisoformat(str(revoked_at)) if revoked_at else None,
    )
