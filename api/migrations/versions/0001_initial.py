"""Jobs and their segments, API keys, rate counters and accuracy scores.

A SQLite file written before migrations existed already has some of these tables: they are kept, and the columns
later versions added to `jobs` are added to them.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Timestamps are ISO 8601 text in UTC with microseconds: they sort as they compare, in both databases.
_JOB_COLUMNS: list[tuple[str, Any, bool]] = [
    ("created_at", sa.Text(), False),
    ("updated_at", sa.Text(), False),
    ("status", sa.Text(), False),
    ("status_rank", sa.Integer(), False),
    ("progress", sa.Float(), False),
    ("filename", sa.Text(), True),
    ("audio_key", sa.Text(), True),
    ("options", sa.Text(), True),
    ("language", sa.Text(), True),
    ("language_probability", sa.Float(), True),
    ("duration", sa.Float(), True),
    ("model", sa.Text(), True),
    ("segment_count", sa.Integer(), True),
    ("error", sa.Text(), True),
    ("chunks_total", sa.Integer(), True),
    ("chunks_done", sa.Integer(), True),
    ("audio_seconds_done", sa.Float(), True),
    ("recovered_stretches", sa.Integer(), True),
    ("owner", sa.Text(), True),
    ("review", sa.Integer(), False),
]
_DEFAULTS = {"progress": "0", "review": "0"}


def _column(name: str, kind: Any, nullable: bool) -> sa.Column[Any]:
    default = _DEFAULTS.get(name)
    return sa.Column(name, kind, nullable=nullable, server_default=sa.text(default) if default else None)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table("jobs"):
        present = {c["name"] for c in inspector.get_columns("jobs")}
        for name, kind, nullable in _JOB_COLUMNS:
            if name not in present:
                # Added to rows that exist: a NOT NULL column needs its default there.
                op.add_column("jobs", _column(name, kind, nullable or name not in _DEFAULTS))
    else:
        op.create_table("jobs", sa.Column("id", sa.Text(), primary_key=True), *(_column(*c) for c in _JOB_COLUMNS))
    indexes = {i["name"] for i in inspector.get_indexes("jobs")} if inspector.has_table("jobs") else set()
    if "jobs_by_age" not in indexes:
        op.create_index("jobs_by_age", "jobs", [sa.text("created_at DESC"), sa.text("id DESC")])
    if "jobs_by_owner" not in indexes:
        op.create_index("jobs_by_owner", "jobs", ["owner", sa.text("created_at DESC"), sa.text("id DESC")])
    if not inspector.has_table("segments"):
        op.create_table(
            "segments",
            sa.Column("job_id", sa.Text(), primary_key=True),
            sa.Column("position", sa.Integer(), primary_key=True),
            sa.Column("body", sa.Text(), nullable=False),
        )
    if not inspector.has_table("api_keys"):
        op.create_table(
            "api_keys",
            sa.Column("id", sa.Text(), primary_key=True),
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("secret_sha256", sa.Text(), nullable=False),
            sa.Column("admin", sa.Integer(), nullable=False, server_default=sa.text("0")),
            sa.Column("limits", sa.Text(), nullable=False, server_default=sa.text("'{}'")),
            sa.Column("created_at", sa.Text(), nullable=False),
            sa.Column("revoked_at", sa.Text(), nullable=True),
        )
    if not inspector.has_table("rate_counters"):
        op.create_table(
            "rate_counters",
            sa.Column("key", sa.Text(), primary_key=True),
            sa.Column("count", sa.BigInteger(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
        )
    if not inspector.has_table("job_scores"):
        op.create_table(
            "job_scores",
            sa.Column("job_id", sa.Text(), primary_key=True),
            sa.Column("owner", sa.Text(), nullable=True),
            sa.Column("model", sa.Text(), nullable=False),
            sa.Column("language", sa.Text(), nullable=False),
            sa.Column("reference", sa.Text(), nullable=False),
            sa.Column("reference_words", sa.Integer(), nullable=False),
            sa.Column("substitutions", sa.Integer(), nullable=False),
            sa.Column("deletions", sa.Integer(), nullable=False),
            sa.Column("insertions", sa.Integer(), nullable=False),
            sa.Column("wer", sa.Float(), nullable=False),
            sa.Column("scored_at", sa.Text(), nullable=False),
        )
        op.create_index("job_scores_by_time", "job_scores", ["scored_at"])


def downgrade() -> None:
    for table in ("job_scores", "rate_counters", "api_keys", "segments", "jobs"):
        op.drop_table(table)
