"""Alembic environment. The gateway passes its own connection in ``config.attributes``;
run from the ``alembic`` command line (``alembic -c gateway/db/alembic.ini ...``) it connects
to ``GATEWAY_DATABASE_URL`` itself."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from gateway.db.engine import Database
from gateway.db.models import metadata
from gateway.settings import Settings


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    db = Database(Settings().database_url)
    try:
        async with db.schema_change() as conn:
            await conn.run_sync(run_migrations)
    finally:
        await db.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    asyncio.run(_run_standalone())
