"""Runtime budgets of one request: a query or mutation that runs too long is stopped with
LIMIT_EXCEEDED and leaves nothing behind; an answer carries a bounded amount of record data
(pages end early to fit, and say so with hasMore); an idle subscription holds nothing of what it
already sent."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import websockets
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Action
from tests.support import GatewayServer, error_code, settings_for
from tests.support.live import WRITE, make_project

READ = """query($progress: [ProgressInput!]) {
  a: actions(project: "live", progress: $progress) {
    actions { recordId } progress { table cursor } hasMore }
}"""
TWO = """{ a: actions(project: "live") { actions { recordId } hasMore }
          b: actions(project: "live") { actions { recordId } hasMore } }"""


def note(n: int, size: int) -> dict[str, Any]:
    return {
        "table": "notes", "user": "alice", "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_700_000_000_000 + n, "order": 0,
        "jsonData": json.dumps({"text": f"{n}:" + "x" * size}),
    }  # fmt: skip


async def actions_in_log(db: Database) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(Action)) or 0


@asynccontextmanager
async def write_lock_held(db: Database, url: str) -> AsyncIterator[None]:
    """Another client holds what a write needs: SQLite's write lock, or on PostgreSQL the lock
    of the table every write of the project takes a row of."""
    if db.backend == "sqlite":
        async with db.transaction() as session:
            await session.execute(select(1))  # BEGIN IMMEDIATE: the write lock, until rollback
            yield
            await session.rollback()
        return
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE write_progress IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_a_write_that_cannot_finish_in_time_is_stopped_and_leaves_nothing(
    migrated_url: str, db: Database
) -> None:
    with GatewayServer.running(settings_for(migrated_url, request_timeout_seconds=1.0)) as server:
        await make_project(server)
        alice = server.client(server.token("alice", Role.PATIENT))
        await alice.data("{ me { id } }")  # the gateway has met alice: the write is all it does
        async with write_lock_held(db, migrated_url):
            writing = asyncio.create_task(
                alice.error(WRITE, actions=[note(1, 10)], deviceId="phone")
            )
            # PostgreSQL stops the waiting statement at the time limit; SQLite does not
            # interrupt a wait for its lock, so there the answer comes once the lock is free
            await asyncio.wait({writing}, timeout=3)
        error = await writing
        assert error_code(error) == "LIMIT_EXCEEDED"
        assert error["extensions"]["limit"] == "timeout"
        assert await actions_in_log(db) == 0
        # the gateway is fine afterwards: the same write goes through
        assert (await alice.data(WRITE, actions=[note(1, 10)], deviceId="phone"))["writeActions"][
            "accepted"
        ] == [0]


async def test_an_answer_carries_a_bounded_amount_of_record_data(migrated_url: str) -> None:
    settings = settings_for(migrated_url, max_response_bytes=2_500, max_record_bytes=2_000)
    with GatewayServer.running(settings) as server:
        await make_project(server)
        alice = server.client(server.token("alice", Role.PATIENT))
        await alice.data(WRITE, actions=[note(n, 1_000) for n in range(5)], deviceId="phone")
        # pages end early to fit, and a reader that follows hasMore still gets everything
        seen: list[str] = []
        progress = None
        while True:
            batch = (await alice.data(READ, progress=progress))["a"]
            assert len(batch["actions"]) <= 2
            seen += [a["recordId"] for a in batch["actions"]]
            progress = batch["progress"]
            if not batch["hasMore"]:
                break
        assert seen == [f"{n:032x}" for n in range(5)]
        # two aliases share one answer's budget: the second gets what is left, here nothing
        body = await alice.execute(TWO)
        assert [error_code(e) for e in body["errors"]] == ["LIMIT_EXCEEDED"]
        assert body["errors"][0]["extensions"]["limit"] == "responseBytes"
        assert body["errors"][0]["path"] == ["b"]


async def test_an_idle_subscription_holds_nothing_of_what_it_sent(server: GatewayServer) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    marker = uuid.uuid4().hex  # other tests of this process may hold long strings of their own
    big = note(1, 200_000) | {"jsonData": json.dumps({"text": marker + "x" * 200_000})}
    await alice.data(WRITE, actions=[big], deviceId="phone")
    token = server.token("alice", Role.PATIENT)
    query = (
        'subscription { databaseActions(project: "live", deviceId: "tab") '
        "{ actions { jsonData } } }"
    )
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        await asyncio.wait_for(ws.recv(), 10)
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        data = message["payload"]["data"]["databaseActions"]["actions"][0]["jsonData"]
        assert json.loads(data)["text"].startswith(marker)
        del message, data  # this test's own copy
        await asyncio.sleep(1.0)  # the stream has gone idle, waiting for the next write
        assert not holders_of_a_long_string_with(marker, 150_000)


async def test_a_long_document_is_not_kept_after_its_request(server: GatewayServer) -> None:
    """Parsed and validated documents are cached, but not long ones: 512 cached documents of
    the body limit's size would pin gigabytes."""
    alice = server.client(server.token("alice", Role.PATIENT))
    marker = uuid.uuid4().hex
    query = f"{{ me {{ id }} }} # {marker}{'x' * 200_000}"
    for _ in range(2):
        assert await alice.data(query) == {"me": {"id": "alice"}}
    del query
    await asyncio.sleep(0.5)  # the request's task ends after its answer was sent
    assert not holders_of_a_long_string_with(marker, 150_000)


def holders_of_a_long_string_with(marker: str, length: int) -> list[str]:
    """Types of the objects (in this process: the gateway runs in a thread here) that still
    reference a string of at least ``length`` characters holding ``marker``."""
    gc.collect()
    found = []
    for holder in gc.get_objects():
        if isinstance(holder, (list, tuple)) and len(holder) > 100_000:
            continue  # gc's own lists of objects
        for value in gc.get_referents(holder):
            if isinstance(value, str) and len(value) >= length and marker in value:
                found.append(type(holder).__name__)
    return found
