"""API keys: created, listed and revoked by the CLI, checked by the API on every request.

A key reads `sfk_<id>_<secret>`. The id is public (it names the key in lists and owns its jobs); of the secret only
a SHA-256 digest is stored, compared in constant time. Keys are 192 random bits, so a slow password hash would add
latency to every request without making a stolen database easier to protect: there is nothing to guess.

The store lives in the API's database, so the CLI works on it whether or not the API is running and every API
replica sharing that database sees a revocation on its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from api.database import iso
from schemas import ApiKey, KeyLimits

PREFIX = "sfk_"

_COLUMNS = "id, name, admin, limits, created_at, revoked_at"


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
    """Thread-safe (a pool of connections)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, *, admin: bool = False, limits: KeyLimits | None = None) -> tuple[ApiKey, str]:
        """The new key's record and the key itself, which exists only in this return value."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24).replace("_", "-")
        record = ApiKey(id=key_id, name=name, admin=admin, limits=limits or KeyLimits(), created_at=datetime.now(UTC))
        with self.engine.begin() as db:
            db.execute(
                text(
                    """INSERT INTO api_keys (id, name, secret_sha256, admin, limits, created_at)
                    VALUES (:id, :name, :digest, :admin, :limits, :created)"""
                ),
                {
                    "id": key_id,
                    "name": name,
                    "digest": _digest(secret),
                    "admin": int(admin),
                    "limits": record.limits.model_dump_json(),
                    "created": iso(record.created_at),
                },
            )
        return record, f"{PREFIX}{key_id}_{secret}"

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        where = "" if include_revoked else "WHERE revoked_at IS NULL"
        with self.engine.connect() as db:
            rows = db.execute(text(f"SELECT {_COLUMNS} FROM api_keys {where} ORDER BY created_at")).all()
        return [_record(tuple(row)) for row in rows]

    def get(self, key_id: str) -> ApiKey:
        with self.engine.connect() as db:
            row = db.execute(text(f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id"), {"id": key_id}).first()
        if row is None:
            raise UnknownKey(key_id)
        return _record(tuple(row))

    def revoke(self, key_id: str) -> ApiKey:
        with self.engine.begin() as db:
            db.execute(
                text("UPDATE api_keys SET revoked_at = :at WHERE id = :id AND revoked_at IS NULL"),
                {"at": iso(datetime.now(UTC)), "id": key_id},
            )
        return self.get(key_id)

    def any_active(self) -> bool:
        with self.engine.connect() as db:
            return db.execute(text("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")).first() is not None

    def verify(self, presented: str) -> ApiKey | None:
        """The active key `presented` is, or None (malformed, unknown, wrong secret or revoked)."""
        parts = split_key(presented)
        if parts is None:
            return None
        key_id, secret = parts
        with self.engine.connect() as db:
            row = db.execute(
                text(f"SELECT {_COLUMNS}, secret_sha256 FROM api_keys WHERE id = :id"), {"id": key_id}
            ).first()
        if row is None or not hmac.compare_digest(row[6], _digest(secret)):
            return None
        record = _record(tuple(row[:6]))
        return record if record.active else None


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
