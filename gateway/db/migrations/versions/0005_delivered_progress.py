"""delivered progress per device, and the log position of each record's last change

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        xid_default = sa.text("(pg_current_xact_id()::text::bigint)")
    else:
        xid_default = sa.text("0")
    # Existing records get xid 0: "changed before any cursor", which is what they are for any
    # device that has read past them; a later change sets the real one.
    with op.batch_alter_table("records") as batch:
        batch.add_column(
            sa.Column("xid", sa.BigInteger(), server_default=xid_default, nullable=False)
        )
    op.create_table(
        "delivered_progress",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("xid", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_delivered_progress_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["project_tables.id"],
            name=op.f("fk_delivered_progress_table_id_project_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "project_id", "device_id", "table_id", name=op.f("pk_delivered_progress")
        ),
    )


def downgrade() -> None:
    op.drop_table("delivered_progress")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("xid")
