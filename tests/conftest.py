"""Fixtures: every database test runs on SQLite and on PostgreSQL, against a fresh database.

PostgreSQL comes from GATEWAY_TEST_POSTGRES_URL (default: postgresql://postgres@127.0.0.1:5432/
postgres). When it is unreachable its tests skip with the reason, except under CI=true, where
they fail: CI must not pass by skipping half the suite.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.migrate import upgrade
from gateway.settings import Settings
from tests.support import GatewayServer, settings_for

POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
_postgres_problem: list[str] = []


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc!r})"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        _postgres_problem.append(reason)
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason}")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"gateway_test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = _asyncpg_dsn(postgres_server).rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("postgres_url")


async def _migrated(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database, on each backend."""
    async for database in _migrated(database_url):
        yield database


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database, for behaviour only PostgreSQL has."""
    async for database in _migrated(postgres_url):
        yield database


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def server(settings: Settings) -> Iterator[GatewayServer]:
    """The real app under uvicorn on a free port of 127.0.0.1."""
    with GatewayServer.running(settings) as running:
        yield running


@pytest.fixture
def admin_token(server: GatewayServer) -> str:
    return server.token("root", Role.ADMIN)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for reason in _postgres_problem:
        terminalreporter.write_sep("!", f"POSTGRESQL TESTS SKIPPED: {reason}", red=True, bold=True)
