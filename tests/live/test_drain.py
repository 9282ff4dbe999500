"""A replica's end: drained on SIGTERM (not ready at once, in-flight requests finish, WebSockets
close with 1001 after the grace period, live runs complete), or killed (``kill -9``: another
replica, or the next one on SQLite, fails its live runs with REPLICA_LOST). Real ``gateway
serve`` processes, on both databases."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.sync.replicas import REPLICA_LOST
from tests.live.test_replicas import replica_process
from tests.support import GatewayServer
from tests.support.live import SUBSCRIBE, make_project, write_notes

GRACE = "2"


@asynccontextmanager
async def live_socket(server: GatewayServer, device: str) -> AsyncIterator[Any]:
    """A graphql-transport-ws connection with alice's databaseActions subscription, once its
    backlog (note 1) arrived: its device's live run is WORKING."""
    protocols = [Subprotocol("graphql-transport-ws")]
    async with websockets.connect(server.ws_url, subprotocols=protocols) as ws:
        token = server.token("alice", Role.PATIENT)
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        variables = {"project": "live", "deviceId": device, "maxCount": 0}
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "1",
                    "payload": {"query": SUBSCRIBE, "variables": variables},
                }
            )
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert first["type"] == "next", first
        yield ws


async def live_runs(database_url: str) -> list[tuple[str, str | None, str | None]]:
    """(status, error code, replica) of every live run (the only runs that name a replica)."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = await session.execute(
                text(
                    "SELECT status, error_code, replica_id FROM sync_runs "
                    "WHERE replica_id IS NOT NULL ORDER BY id"
                )
            )
            return [tuple(row) for row in rows.all()]  # type: ignore[misc]
    finally:
        await db.dispose()


async def test_sigterm_drains_the_replica(migrated_url: str, tmp_path: Path) -> None:
    async with replica_process(migrated_url, tmp_path, drain_grace_seconds=GRACE) as (one, proc):
        await make_project(one)
        await write_notes(one.client(one.token("alice", Role.PATIENT)), [1])
        async with live_socket(one, "laptop") as ws:
            assert [r[0] for r in await live_runs(migrated_url)] == ["WORKING"]
            # A request in flight: its head and half its body sent.
            body = orjson.dumps({"query": "{ __typename }"})
            reader, writer = await asyncio.open_connection("127.0.0.1", one.port)
            writer.write(
                b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:5]
            )
            await writer.drain()

            proc.send_signal(signal.SIGTERM)
            async with httpx.AsyncClient() as http:
                for _ in range(100):  # the signal reaches the process soon, not at once
                    ready = await http.get(one.base_url + "/readyz")
                    if ready.status_code == 503:
                        break
                    await asyncio.sleep(0.02)
            assert (ready.status_code, ready.json()["status"]) == (503, "draining")

            # The grace period over, the WebSocket closes with "going away".
            try:
                async with asyncio.timeout(20):
                    while True:
                        await ws.recv()
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1001

            # The request in flight is still answered.
            writer.write(body[5:])
            await writer.drain()
            response = await asyncio.wait_for(reader.read(), 20)  # and then the connection closes
            writer.close()
            assert response.startswith(b"HTTP/1.1 200"), response[:200]
            assert b'"__typename":"Query"' in response
            assert await asyncio.wait_for(proc.wait(), 30) == 0
    # The device's live run ended with its stream: completed, not left WORKING.
    assert [r[:2] for r in await live_runs(migrated_url)] == [("COMPLETED", None)]


async def test_a_killed_replicas_live_runs_fail_with_replica_lost(
    migrated_url: str, tmp_path: Path, backend: str
) -> None:
    """On PostgreSQL another replica running beside it notices; on SQLite (one replica at a
    time) the next one started on the same database does."""
    fast = {"replica_beat_seconds": "0.3", "replica_lost_seconds": "2"}
    async with replica_process(migrated_url, tmp_path, **fast) as (one, proc):
        await make_project(one)
        await write_notes(one.client(one.token("alice", Role.PATIENT)), [1])
        other = replica_process(migrated_url, tmp_path, **fast)
        async with asynccontextmanager_or_none(other if backend == "postgresql" else None):
            async with live_socket(one, "laptop"):
                ((status, _, held_by),) = await live_runs(migrated_url)
                assert status == "WORKING" and held_by is not None
                proc.kill()
                await proc.wait()
            if backend == "sqlite":
                await asyncio.sleep(2)  # after the lost interval: nobody beat meanwhile
                async with other:
                    found = await wait_for_lost(migrated_url)
            else:
                found = await wait_for_lost(migrated_url)
    assert found == [("FAILED", REPLICA_LOST, held_by)]


async def wait_for_lost(database_url: str) -> list[tuple[str, str | None, str | None]]:
    async with asyncio.timeout(30):
        while True:
            found = await live_runs(database_url)
            if found and found[0][0] != "WORKING":
                return found
            await asyncio.sleep(0.2)


@asynccontextmanager
async def asynccontextmanager_or_none(manager: Any) -> AsyncIterator[None]:
    if manager is None:
        yield
        return
    async with manager:
        yield
