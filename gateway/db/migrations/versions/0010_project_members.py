"""project membership: members of a project, and open projects

Only members (and admins) reach a project from now on; an ``open`` project admits every
authenticated user. Existing projects become closed, with as members every user who has
already used them (whose data is in it, who synced with it, who granted or was granted access
in it, whose syncs or push registrations are in it), so nobody who works there loses access.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIGRATION = "migration 0010"  # who added the members found in existing data

# (table, column) of every user id who has used a project.
_USERS = (
    ("actions", "user_id"),
    ("devices", "owner_id"),
    ("sync_events", "user_id"),
    ("sync_events", "username"),
    ("access_grants", "user_id"),
    ("access_grants", "grantee_id"),
    ("syncs", "owner_id"),
    ("push_registrations", "user_id"),
    ("write_progress", "user_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("open", sa.Boolean(), server_default=sa.false(), nullable=False))
    members = op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("added_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_members_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "user_id", name=op.f("pk_project_members")),
    )
    op.create_index(op.f("ix_project_members_user_id"), "project_members", ["user_id"])
    conn = op.get_bind()
    found: set[tuple[int, str]] = set()
    for table, column in _USERS:
        t = sa.table(table, sa.column("project_id", sa.Integer()), sa.column(column, sa.String()))
        found.update(conn.execute(sa.select(t.c.project_id, t.c[column]).distinct()).all())
    now = datetime.now(UTC)
    rows = [
        {"project_id": p, "user_id": u, "added_by": MIGRATION, "created_at": now}
        for p, u in sorted(found)
        if u
    ]
    if rows:
        op.bulk_insert(members, rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_project_members_user_id"), table_name="project_members")
    op.drop_table("project_members")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("open")
