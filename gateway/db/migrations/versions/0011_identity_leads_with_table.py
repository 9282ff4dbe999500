"""the identities of actions and records lead with their table

The unique constraints on an action's identity (project, user, table, recordId, time, order) and
a record's (project, user, table, recordId) started with the project and the user, as the log's
and the records' other indexes do. On a table without statistics (never analyzed, as after a
deployment on a server without autovacuum) PostgreSQL's planner then took either index for a
write's lookups by identity, often the other one, which reads every action or record of the
user: writes slowed down as the log grew. With the table first, and the lookups not naming the
project (the table determines it), only the identity's own index serves them. Same columns,
same uniqueness.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = {
    "actions": ["project_id", "user_id", "table_id", "record_id", "time", "action_order"],
    "records": ["project_id", "user_id", "table_id", "record_id"],
}
_NEW = {
    "actions": ["table_id", "user_id", "record_id", "time", "action_order", "project_id"],
    "records": ["table_id", "user_id", "record_id", "project_id"],
}


def _swap(before: dict[str, list[str]], after: dict[str, list[str]]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in before:
        # SQLite cannot drop a constraint: the table is rebuilt (migrations run without
        # foreign key enforcement there, see Database.schema_change).
        with op.batch_alter_table(table, recreate="always" if sqlite else "auto") as batch:
            batch.drop_constraint(op.f(f"uq_{table}_{'_'.join(before[table])}"), type_="unique")
            batch.create_unique_constraint(
                op.f(f"uq_{table}_{'_'.join(after[table])}"), after[table]
            )


def upgrade() -> None:
    _swap(_OLD, _NEW)


def downgrade() -> None:
    _swap(_NEW, _OLD)
