"""Migrations: a fresh database gets the whole schema, and an SQLite file from before migrations is adopted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect, text

from api.database import MIGRATIONS, database_url, open_database
from api.jobstore import JobStore


def test_an_sqlite_file_from_before_migrations_keeps_its_jobs_and_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as old:  # the schema of the first releases, with one job in it
        old.executescript(
            """CREATE TABLE jobs (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                status TEXT NOT NULL, status_rank INTEGER NOT NULL, progress REAL NOT NULL DEFAULT 0, filename TEXT,
                audio_key TEXT, options TEXT, language TEXT, language_probability REAL, duration REAL, model TEXT,
                segment_count INTEGER, error TEXT);
            CREATE TABLE segments (job_id TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL,
                PRIMARY KEY (job_id, position));
            INSERT INTO jobs (id, created_at, updated_at, status, status_rank, filename)
                VALUES ('job_old', '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00',
                'queued', 0, 'old.wav');"""
        )
    engine = open_database(None, path)
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert {"owner", "review", "chunks_total", "recovered_stretches"} <= columns
    assert {"api_keys", "rate_counters", "job_scores", "alembic_version"} <= set(inspect(engine).get_table_names())
    job = JobStore(engine).get("job_old")
    assert job is not None and job.filename == "old.wav" and job.owner is None
    engine.dispose()
    again = open_database(None, path)  # a second start changes nothing
    with again.connect() as db:
        assert db.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    again.dispose()


def test_urls() -> None:
    assert database_url("postgresql://u:p@h/db", Path("x")) == "postgresql+psycopg://u:p@h/db"
    assert database_url(None, Path("/data/jobs.sqlite3")) == "sqlite:////data/jobs.sqlite3"


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
