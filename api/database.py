"""The API's database: jobs, API keys, rate counters and accuracy scores, in SQLite by default or in PostgreSQL
when `SCRIBEFLOW_DATABASE_URL` names one, so several API replicas share one state.

Every store speaks SQLAlchemy Core with SQL both databases understand (upserts with `ON CONFLICT`, `RETURNING`);
the few functions that differ in name come from `Dialect`. The schema is Alembic's (`api/migrations`), brought to
the newest revision by `migrate()` before a process uses the database; an SQLite file from before migrations
existed is adopted as it is, its missing columns added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK = 0x5C12_1BE0  # one migration at a time when replicas start together on PostgreSQL


def iso(value: datetime) -> str:
    """How every store writes a time: ISO 8601 in UTC with microseconds, so text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def database_url(url: str | None, path: Path) -> str:
    """`url` if given (`postgresql://…` or `postgresql+psycopg://…`), else the SQLite file at `path`."""
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    return f"sqlite:///{path.resolve()}"


def connect(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL (readers never wait for the writer) and a patient busy timeout."""
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi: Any, _record: Any) -> None:
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest revision; safe when several processes start at once."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass(frozen=True)
class Dialect:
    """Names that differ: SQLite's two-argument `max`/`min` are PostgreSQL's `greatest`/`least`."""

    greatest: str
    least: str

    @staticmethod
    def of(engine: Engine) -> Dialect:
        if engine.dialect.name == "postgresql":
            return Dialect(greatest="greatest", least="least")
        return Dialect(greatest="max", least="min")


def open_database(url: str | None, path: Path) -> Engine:
    """Connected and migrated: what every process that uses the database starts with."""
    engine = connect(database_url(url, path))
    migrate(engine)
    return engine
