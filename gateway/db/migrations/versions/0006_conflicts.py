"""conflicts: per-table conflict policy, superseded actions, recorded conflicts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("project_tables") as batch:
        batch.add_column(
            sa.Column(
                "conflict_policy",
                sa.String(length=32),
                server_default="LAST_WRITER_WINS",
                nullable=False,
            )
        )
    with op.batch_alter_table("actions") as batch:
        batch.add_column(
            sa.Column("superseded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "conflicts",
        sa.Column("id", LogId, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("winner", JSONDocument, nullable=False),
        sa.Column("loser", JSONDocument, nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_by", sa.String(length=255), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_conflicts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["project_tables.id"],
            name=op.f("fk_conflicts_table_id_project_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
    )
    op.create_index(
        op.f("ix_conflicts_project_id_status_id"), "conflicts", ["project_id", "status", "id"]
    )
    op.create_index(
        op.f("ix_conflicts_project_id_user_id_id"), "conflicts", ["project_id", "user_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("conflicts")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("superseded")
    with op.batch_alter_table("project_tables") as batch:
        batch.drop_column("conflict_policy")
