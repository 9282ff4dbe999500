"""replicas: a heartbeat per running gateway, and the replica that holds each live run

Every ``gateway serve`` process registers itself in ``replicas`` and beats there every few
seconds. A live subscription's sync run records the replica that streams it
(``sync_runs.replica_id``), so that when a replica dies without draining (``kill -9``, a lost
node) the others, seeing it stop beating, fail its live runs with ``REPLICA_LOST`` instead of
leaving them WORKING until the run timeout.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.create_index(op.f("ix_replicas_beat_at"), "replicas", ["beat_at"])
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("replica_id", sa.String(length=64), nullable=True))
    # Only live runs carry one: a partial index would do, but both databases take this one.
    op.create_index(op.f("ix_sync_runs_replica_id"), "sync_runs", ["replica_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_runs_replica_id"), table_name="sync_runs")
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("replica_id")
    op.drop_index(op.f("ix_replicas_beat_at"), table_name="replicas")
    op.drop_table("replicas")
