"""Fixtures: every database test runs on SQLite and on PostgreSQL, against a fresh database.

``database_url`` is a database without tables (for migration and start-up tests);
``migrated_url`` (behind ``db``, ``settings`` and ``server``) is a migrated, empty one: a copy of
a SQLite file migrated once per session, or one PostgreSQL database migrated once per session and
emptied before each test, which is several times cheaper than creating and migrating one.

PostgreSQL comes from GATEWAY_TEST_POSTGRES_URL (default: postgresql://postgres@127.0.0.1:5432/
postgres). When it is unreachable its tests skip with the reason, except under CI=true, where
they fail: CI must not pass by skipping half the suite. NATS (the other bus between replicas)
comes from GATEWAY_TEST_NATS_URL (default nats://127.0.0.1:4222), skipped or failed alike.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

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
NATS_URL = os.environ.get("GATEWAY_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() == "true"
_postgres_problem: list[str] = []
_nats_problem: list[str] = []
_nginx_problem: list[str] = []


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


async def _nats_answers(url: str) -> None:
    """A NATS server greets every new connection with INFO."""
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, parts.port or 4222), 5
    )
    try:
        greeting = await asyncio.wait_for(reader.readline(), 5)
        if not greeting.startswith(b"INFO "):
            raise ConnectionError(f"not a NATS server: {greeting[:40]!r}")
    finally:
        writer.close()


@pytest.fixture(scope="session")
def nats_server() -> str:
    """The NATS server the NATS-bus tests use (skipped loudly when unreachable, failed in CI)."""
    try:
        asyncio.run(_nats_answers(NATS_URL))
    except (OSError, TimeoutError, ConnectionError) as exc:
        reason = f"NATS at {NATS_URL} is unreachable ({exc!r})"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        _nats_problem.append(reason)
        pytest.skip(f"SKIPPING NATS TESTS: {reason}")
    return NATS_URL


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Debian's nginx, for the test behind a real proxy (tests/live/test_nginx.py; .ci/run
    installs it): skipped loudly when missing, failed in CI."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        reason = "nginx is not installed (apt-get install nginx)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        _nginx_problem.append(reason)
        pytest.skip(f"SKIPPING NGINX TEST: {reason}")
    return found


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
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database without any table, on each backend."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated for the whole session: tests copy it instead of running every
    migration again (the migrations themselves are tested on empty databases)."""
    path = tmp_path_factory.mktemp("template") / "gateway.db"

    async def migrate() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture(scope="session")
def postgres_migrated(postgres_server: str) -> Iterator[str]:
    """One PostgreSQL database migrated for the whole session; each test gets it emptied
    (creating and migrating a database costs more than most tests)."""
    name = f"gateway_test_{uuid.uuid4().hex[:16]}_shared"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base, _, _ = _asyncpg_dsn(postgres_server).rpartition("/")
    url = f"{base}/{name}"

    async def migrate() -> None:
        database = Database(url)
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    try:
        asyncio.run(migrate())
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _emptied(url: str) -> None:
    """Every table empty and every id restarting at 1, as in a fresh database. Connections a
    previous test left behind are ended first, so nothing it held can block the truncation."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        names = ", ".join(t["name"] for t in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def migrated_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database, empty, on each backend: a copy of the SQLite template, or the
    session's PostgreSQL database emptied."""
    if backend == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_migrated")
    asyncio.run(_emptied(url))
    return url


async def _migrated(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Database]:
    """A migrated database, on each backend."""
    async for database in _migrated(migrated_url):
        yield database


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL database, for behaviour only PostgreSQL has."""
    async for database in _migrated(postgres_url):
        yield database


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return settings_for(migrated_url)


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
    for reason in sorted(set(_nats_problem)):
        terminalreporter.write_sep("!", f"NATS TESTS SKIPPED: {reason}", red=True, bold=True)
    for reason in sorted(set(_nginx_problem)):
        terminalreporter.write_sep("!", f"NGINX TEST SKIPPED: {reason}", red=True, bold=True)
