"""Diarized jobs: who spoke when, from the voices, as JSON.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("speaker_turns", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "speaker_turns")
