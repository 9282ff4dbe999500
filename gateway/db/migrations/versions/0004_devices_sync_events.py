"""devices and sync events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"],
        ["projects.id"],
        name=op.f(f"fk_{table}_project_id_projects"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("names", JSONDocument, nullable=False),
        sa.Column("device_type", sa.String(length=100), nullable=True),
        sa.Column("version", sa.String(length=100), nullable=True),
        sa.Column("pending_up", sa.Integer(), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        _project_fk("devices"),
        sa.PrimaryKeyConstraint("project_id", "device_id", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_owner_id"), "devices", ["owner_id"])
    op.create_table(
        "sync_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("device_name", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("universe", sa.Text(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        _project_fk("sync_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_events")),
    )
    op.create_index(
        op.f("ix_sync_events_project_id_device_id_id"),
        "sync_events",
        ["project_id", "device_id", "id"],
    )
    op.create_index(op.f("ix_sync_events_user_id"), "sync_events", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_events_user_id"), table_name="sync_events")
    op.drop_index(op.f("ix_sync_events_project_id_device_id_id"), table_name="sync_events")
    op.drop_table("sync_events")
    op.drop_index(op.f("ix_devices_owner_id"), table_name="devices")
    op.drop_table("devices")
