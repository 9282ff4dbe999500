"""The async engine and sessions, one code path for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from gateway.settings import normalize_database_url

# Execution option that makes a SQLite transaction take the write lock when it begins.
_IMMEDIATE = "gateway_sqlite_immediate"


class Database:
    """Owns the engine. ``session()`` is for reads, ``lookup()`` for reads that need no
    transaction, ``snapshot()`` for reads that must agree; ``transaction()`` for writes,
    committed whole or rolled back whole."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        idle_in_transaction_timeout_ms: int = 60_000,
        pool_size: int = 20,
        max_overflow: int = 10,
        pool_timeout_seconds: float = 30.0,
    ) -> None:
        self.url = normalize_database_url(url)
        self.backend = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        # A statement's parameters (record data, tokens' users) stay out of its errors' text,
        # which the server logs.
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.backend == "postgresql":
            options |= {
                # No ping round trips (BEGIN, a query, ROLLBACK) before each checkout: a
                # connection the server closed is known locally and replaced (see below).
                "pool_pre_ping": False,
                "pool_size": pool_size,
                "max_overflow": max_overflow,
                "pool_timeout": pool_timeout_seconds,
                "connect_args": {
                    "server_settings": {
                        "idle_in_transaction_session_timeout": str(idle_in_transaction_timeout_ms),
                        # asyncpg prepares every statement; after five runs PostgreSQL may
                        # switch to a generic plan that ignores the parameters, which for the
                        # log's lookups is a hundred times slower. Planning is cheap here.
                        "plan_cache_mode": "force_custom_plan",
                    }
                },
            }
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.backend == "sqlite":
            _configure_sqlite(self.engine)
        else:
            _replace_closed_connections(self.engine)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._lookup = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        # Same pool; on SQLite its transactions begin with the write lock (see below).
        self.write_engine: AsyncEngine = self.engine.execution_options(**{_IMMEDIATE: True})
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        return self._reader()

    def lookup(self) -> AsyncSession:
        """A session for reads that need no transaction (a lookup by id): each statement runs
        on its own, without the BEGIN and ROLLBACK round trips, and sees what was committed
        when it ran. Not for statements whose answers must agree with each other."""
        return self._lookup()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only session whose statements all see one snapshot of the database:
        REPEATABLE READ on PostgreSQL; on SQLite (WAL) any read transaction already does."""
        async with self._reader() as session:
            if self.backend == "postgresql":
                await session.connection(
                    execution_options={
                        "isolation_level": "REPEATABLE READ",
                        "postgresql_readonly": True,
                    }
                )
            yield session

    @asynccontextmanager
    async def schema_change(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for migrations. SQLite alters a table by building a copy and dropping
        the original, and dropping a table that others refer to would cascade to their rows:
        its migrations run on a connection of their own without foreign key enforcement, and
        ``PRAGMA foreign_key_check`` must find nothing amiss before they commit."""
        if self.backend == "postgresql":
            async with self.write_engine.begin() as conn:
                yield conn
            return
        engine = create_async_engine(self.url, poolclass=NullPool)
        _configure_sqlite(engine, foreign_keys=False)
        try:
            async with engine.execution_options(**{_IMMEDIATE: True}).begin() as conn:
                yield conn
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            await engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """A pooled connection that the server closed (restarted, failed over, ended it) is
    replaced at checkout. asyncpg keeps reading its idle sockets, so it knows of the close
    without a round trip; a connection silently cut by the network is found by its next
    statement, as a ping would have been (writes retry on that, see the writer)."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the database closed this connection")  # the pool retries


def _configure_sqlite(engine: AsyncEngine, *, foreign_keys: bool = True) -> None:
    """Take over SQLite's transaction handling from the driver.

    The driver's implicit deferred BEGIN lets two writers both read and then fail to upgrade
    their lock (SQLITE_BUSY without waiting). Writes instead start with BEGIN IMMEDIATE, which
    waits on ``busy_timeout`` and makes every write transaction run in commit order; reads keep
    a plain BEGIN so WAL lets them run beside a writer.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"foreign_keys={'ON' if foreign_keys else 'OFF'}",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: Any) -> None:
        # The driver runs each statement in a thread of its own. A task cancelled meanwhile (a
        # request over its time) interrupts the statement, which would otherwise run on and
        # hold up the closing of the connection. (SQLite does not interrupt a wait for the
        # database lock: that still lasts until the lock is free, busy_timeout at most.)
        if isinstance(context.original_exception, asyncio.CancelledError):
            driver = getattr(context.connection, "connection", None)
            sqlite = getattr(getattr(driver, "driver_connection", None), "_connection", None)
            if sqlite is not None:
                sqlite.interrupt()
