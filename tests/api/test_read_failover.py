"""Reads after PostgreSQL closed every connection of the gateway (a restart, a failover): the
pool hands out no closed connection, although it sends no ping before each checkout.

The connections are ended for real with pg_terminate_backend, as a restart ends them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.auth.principal import Role
from gateway.db import Database
from tests.support import GatewayServer, settings_for
from tests.support.live import WRITE, make_project, note

READ = '{ actions(project: "live") { actions { recordId } } }'
OTHERS = """
SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@pytest.fixture
async def gateway(postgres_db: Database, postgres_url: str) -> AsyncIterator[GatewayServer]:
    with GatewayServer.running(settings_for(postgres_url)) as server:
        await make_project(server)
        yield server


async def end_every_connection(url: str) -> int:
    """End every other backend of the database and wait until they are gone."""
    conn = await asyncpg.connect(url)
    try:
        pids = [row["pid"] for row in await conn.fetch(OTHERS)]
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        async with asyncio.timeout(10):
            while await conn.fetchval(  # noqa: ASYNC110
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            ):
                await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return len(pids)


async def test_reads_and_writes_go_on_after_every_connection_was_closed(
    gateway: GatewayServer, postgres_url: str
) -> None:
    alice = gateway.client(gateway.token("alice", Role.PATIENT))
    await alice.data(WRITE, actions=[note(1)], deviceId="phone")
    # Several connections in the pool: reads at the same time each take one.
    await asyncio.gather(*(alice.data(READ) for _ in range(8)))

    assert await end_every_connection(postgres_url) > 1
    await asyncio.sleep(0.1)  # the closes reach the gateway's event loop (another thread)

    for _ in range(12):  # one after another: each checkout may meet a closed connection
        assert (await alice.data(READ))["actions"]["actions"] == [{"recordId": f"{1:032x}"}]
    answers = await asyncio.gather(*(alice.data(READ) for _ in range(8)))
    assert all(len(a["actions"]["actions"]) == 1 for a in answers)
    written = await alice.data(WRITE, actions=[note(2)], deviceId="phone")
    assert written["writeActions"]["accepted"] == [0]
