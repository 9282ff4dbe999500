"""the action log, the records it builds, and write progress

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fks(table: str) -> list[sa.ForeignKeyConstraint]:
    return [
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f(f"fk_{table}_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["project_tables.id"],
            name=op.f(f"fk_{table}_table_id_project_tables"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    # The writing transaction's id, so readers can stay below the oldest one still running
    # (see gateway/sync/horizon.py). SQLite has one writer at a time and needs no such thing.
    if op.get_bind().dialect.name == "postgresql":
        xid_default = sa.text("(pg_current_xact_id()::text::bigint)")
    else:
        xid_default = sa.text("0")
    op.create_table(
        "actions",
        sa.Column("id", LOG_ID, nullable=False),
        sa.Column("xid", sa.BigInteger(), server_default=xid_default, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=6), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("json_data", sa.Text(), nullable=True),
        sa.Column("sample_time", sa.BigInteger(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("action_order", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        *_fks("actions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint(
            "project_id",
            "user_id",
            "table_id",
            "record_id",
            "time",
            "action_order",
            name=op.f("uq_actions_project_id_user_id_table_id_record_id_time_action_order"),
        ),
    )
    op.create_index(
        op.f("ix_actions_project_id_user_id_xid_id"),
        "actions",
        ["project_id", "user_id", "xid", "id"],
    )
    op.create_table(
        "records",
        sa.Column("id", LOG_ID, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.String(length=255), nullable=False),
        sa.Column("data", JSONDocument, nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        *_fks("records"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint(
            "project_id",
            "user_id",
            "table_id",
            "record_id",
            name=op.f("uq_records_project_id_user_id_table_id_record_id"),
        ),
    )
    op.create_index(
        op.f("ix_records_project_id_user_id_table_id_id"),
        "records",
        ["project_id", "user_id", "table_id", "id"],
    )
    op.create_table(
        "write_progress",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("table_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("action_order", sa.Integer(), nullable=False),
        *_fks("write_progress"),
        sa.PrimaryKeyConstraint(
            "project_id", "user_id", "table_id", "device_id", name=op.f("pk_write_progress")
        ),
    )


def downgrade() -> None:
    op.drop_table("write_progress")
    op.drop_index(op.f("ix_records_project_id_user_id_table_id_id"), table_name="records")
    op.drop_table("records")
    op.drop_index(op.f("ix_actions_project_id_user_id_xid_id"), table_name="actions")
    op.drop_table("actions")
