"""deviceStatusChanged: live device health for dashboards, over real WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from gql import gql
from gql.client import AsyncClientSession

from gateway.auth.principal import Role
from tests.live_support import PROTOCOLS, live_session, make_project, write_notes
from tests.support import GatewayServer, GraphQLHttp

pytestmark = pytest.mark.parametrize("protocol", PROTOCOLS)

WATCH = 'subscription { deviceStatusChanged(project: "live") { deviceId status pendingDown } }'
READ = """query($progress: [ProgressInput!], $maxCount: Int! = 0) {
  actions(project: "live", deviceId: "laptop", progress: $progress, maxCount: $maxCount) {
    progress { table cursor }
  }
}"""


@asynccontextmanager
async def watching(
    session: AsyncClientSession,
) -> AsyncIterator[AsyncGenerator[dict[str, Any], None]]:
    stream = session.subscribe(gql(WATCH))
    try:
        yield stream
    finally:
        await stream.aclose()


async def changes(stream: AsyncGenerator[dict[str, Any], None], count: int) -> list[tuple]:
    got = []
    async with asyncio.timeout(15):
        while len(got) < count:
            device = (await anext(stream))["deviceStatusChanged"]
            got.append((device["deviceId"], device["status"], device["pendingDown"]))
    return got


async def test_a_dashboard_sees_a_device_catch_up_after_it_reads(
    server: GatewayServer, protocol: str
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    await write_notes(alice, [1, 2], device="phone")
    first = await alice.data(READ, maxCount=1)  # the laptop syncs, one action still waits
    admin = server.token("root", Role.ADMIN)
    async with live_session(server, admin, protocol) as session, watching(session) as stream:
        assert sorted(await changes(stream, 2)) == [
            ("laptop", "PENDING", 1),
            ("phone", "UP_TO_DATE", 0),
        ]
        progress = [
            {"table": p["table"], "cursor": p["cursor"]} for p in first["actions"]["progress"]
        ]
        await alice.data(READ, progress=progress)  # the laptop reads the rest
        assert await changes(stream, 1) == [("laptop", "UP_TO_DATE", 0)]


async def test_a_patient_watches_only_their_own_devices_and_watchers_share_one_feed(
    server: GatewayServer, protocol: str
) -> None:
    await make_project(server)
    alice: GraphQLHttp = server.client(server.token("alice", Role.PATIENT))
    bob = server.client(server.token("bob", Role.PATIENT))
    await write_notes(alice, [1], device="alice-phone")
    feeds = server.app.state.services.status_feeds
    async with (
        live_session(server, server.token("bob", Role.PATIENT), protocol) as bob_session,
        watching(bob_session) as bob_stream,
        live_session(server, server.token("root", Role.ADMIN), protocol) as admin_session,
        watching(admin_session) as admin_stream,
    ):
        assert await changes(admin_stream, 1) == [("alice-phone", "UP_TO_DATE", 0)]
        await write_notes(bob, [2], device="bob-phone", user="bob")
        assert await changes(bob_stream, 1) == [("bob-phone", "UP_TO_DATE", 0)]
        assert feeds.watchers("live") == 2  # one feed computes for both dashboards
    async with asyncio.timeout(5):
        while feeds.watchers("live"):  # noqa: ASYNC110 -- the server stops it in its own time
            await asyncio.sleep(0.02)
