"""sync runs: syncs (device or external job) and their runs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LogId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTERS = (
    "source_record_count",
    "records_failed",
    "source_record_updates",
    "source_record_deletes",
    "source_record_invalids",
    "records_invalid",
    "records_processed",
    "records_updated",
)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"],
        ["projects.id"],
        name=op.f(f"fk_{table}_project_id_projects"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("include_tables", JSONDocument, nullable=True),
        sa.Column("exclude_tables", JSONDocument, nullable=True),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _project_fk("syncs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_syncs")),
        sa.UniqueConstraint("project_id", "device_id", name=op.f("uq_syncs_project_id_device_id")),
    )
    op.create_index(op.f("ix_syncs_project_id_owner_id"), "syncs", ["project_id", "owner_id"])
    op.create_table(
        "sync_runs",
        sa.Column("id", LogId, nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("scheduled_execution_time", UTCDateTime(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS),
        sa.Column("full_sync", sa.Boolean(), nullable=False),
        sa.Column("trigger_ui_tag", sa.String(length=100), nullable=False),
        sa.Column("trigger_ui_detail", sa.Text(), nullable=True),
        sa.Column("canceled", sa.Boolean(), nullable=False),
        sa.Column("current_step", sa.String(length=200), nullable=True),
        _project_fk("sync_runs"),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["syncs.id"],
            name=op.f("fk_sync_runs_sync_id_syncs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    op.create_index(
        op.f("ix_sync_runs_sync_id_created_at_id"), "sync_runs", ["sync_id", "created_at", "id"]
    )
    op.create_index(
        op.f("ix_sync_runs_project_id_status_created_at_id"),
        "sync_runs",
        ["project_id", "status", "created_at", "id"],
    )
    op.create_index(op.f("ix_sync_runs_status_updated_at"), "sync_runs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_table("syncs")
