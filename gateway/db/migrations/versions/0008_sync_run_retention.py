"""an index for pruning finished sync runs past their retention

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_sync_runs_completed_at"), "sync_runs", ["completed_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_runs_completed_at"), table_name="sync_runs")
