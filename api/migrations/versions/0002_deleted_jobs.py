"""Deleted jobs: the ids of jobs deleted through the API, so events still on Kafka cannot bring them back.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_jobs",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("deleted_at", sa.Text(), nullable=False),
    )
    op.add_column("jobs", sa.Column("audio_deleted_at", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "audio_deleted_at")
    op.drop_table("deleted_jobs")
