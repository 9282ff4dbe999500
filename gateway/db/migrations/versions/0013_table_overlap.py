"""project_tables.overlap: the [start, end] fields whose overlapping ranges from two devices
are a SESSION_OVERLAP conflict (RegardingWork's overlapping sessions)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("project_tables", sa.Column("overlap", JSONDocument, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("project_tables") as batch:
        batch.drop_column("overlap")
