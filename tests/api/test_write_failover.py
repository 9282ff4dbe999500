"""A write whose database connection dies mid-transaction (PostgreSQL restarted, failed over,
or the network cut) is retried once on a fresh connection; if that one dies too, the client
gets a coded, retryable error. Either way the batch is in the log once or not at all.

The connection is killed for real: the write is held on a lock, and the test ends its backend
with pg_terminate_backend while it waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from asyncpg.transaction import Transaction
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Action
from tests.support import GatewayServer, settings_for
from tests.support.live import WRITE, make_project

WAITING_WRITER = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


def note(n: int) -> dict[str, Any]:
    return {
        "table": "notes", "user": "alice", "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_700_000_000_000 + n, "order": 0, "jsonData": json.dumps({"text": "hi"}),
    }  # fmt: skip


@pytest.fixture
async def gateway(postgres_db: Database, postgres_url: str) -> AsyncIterator[GatewayServer]:
    with GatewayServer.running(settings_for(postgres_url)) as server:
        await make_project(server)
        alice = server.client(server.token("alice", Role.PATIENT))
        await alice.data("{ me { id } }")  # met: the write is all the next request does
        yield server


@asynccontextmanager
async def writes_held(url: str) -> AsyncIterator[Transaction]:
    """Writes wait on a lock of ``write_progress`` held by a transaction of another connection
    (roll it back to let them through)."""
    locker = await asyncpg.connect(url)
    try:
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE write_progress IN EXCLUSIVE MODE")
        yield lock
    finally:
        await locker.close()


async def kill_writer_while_it_waits(url: str) -> None:
    """End the backend of the write waiting on the lock (polled from a connection of its own:
    pg_stat_activity is read once per transaction)."""
    conn = await asyncpg.connect(url)
    try:
        async with asyncio.timeout(10):
            while not (pids := await conn.fetch(WAITING_WRITER)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        for row in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
    finally:
        await conn.close()


async def in_log(db: Database) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(Action)) or 0


async def test_a_write_whose_connection_dies_is_retried_on_a_fresh_one(
    gateway: GatewayServer, postgres_db: Database, postgres_url: str
) -> None:
    alice = gateway.client(gateway.token("alice", Role.PATIENT))
    async with writes_held(postgres_url) as lock:
        writing = asyncio.create_task(alice.execute(WRITE, actions=[note(1)], deviceId="phone"))
        await kill_writer_while_it_waits(postgres_url)
        await lock.rollback()  # the retry finds the table free
        body = await writing
    assert body["data"]["writeActions"]["accepted"] == [0], body
    assert await in_log(postgres_db) == 1


async def test_when_the_retry_dies_too_the_client_may_retry_and_nothing_was_written(
    gateway: GatewayServer, postgres_db: Database, postgres_url: str
) -> None:
    alice = gateway.client(gateway.token("alice", Role.PATIENT))
    async with writes_held(postgres_url) as lock:
        writing = asyncio.create_task(alice.execute(WRITE, actions=[note(1)], deviceId="phone"))
        await kill_writer_while_it_waits(postgres_url)
        await asyncio.sleep(0.2)  # the retry has started, and waits on the lock in its turn
        await kill_writer_while_it_waits(postgres_url)
        body = await writing
        await lock.rollback()
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "retryable": True}
    assert "lost" in error["message"]
    assert await in_log(postgres_db) == 0
    # and the client's retry goes through
    assert (await alice.data(WRITE, actions=[note(1)], deviceId="phone"))["writeActions"][
        "accepted"
    ] == [0]
