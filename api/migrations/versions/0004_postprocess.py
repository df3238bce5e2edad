"""Post-processing: each job's language-model step outcomes and summary, as JSON.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("postprocess", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "postprocess")
