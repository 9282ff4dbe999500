from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from gateway.db import Database
from gateway.db.migrate import current_revision, downgrade, head_revision, upgrade
from gateway.db.models import metadata

GATEWAY_TABLES = {
    "projects",
    "project_tables",
    "users",
    "access_grants",
    "actions",
    "records",
    "write_progress",
}


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_builds_exactly_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        assert await table_names(db) >= GATEWAY_TABLES
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        await db.dispose()


async def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
        await upgrade(db)
        await downgrade(db, "base")
        assert await current_revision(db) is None
        assert not GATEWAY_TABLES & await table_names(db)
        await upgrade(db)
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()
