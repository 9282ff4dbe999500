"""actions.written_by: the user who wrote each action

SenSeeAct's ``includeOwn: false`` without a ``deviceId`` leaves out the reader's own writes (the
seed's ``source: "remote"``): the log keeps who wrote each action for that. Actions written
before this migration have none and are never taken for the reader's own.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("written_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("written_by")
