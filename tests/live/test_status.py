"""deviceStatusChanged and syncStatusChanged: live status for dashboards, over real WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp
from tests.support.live import PROTOCOLS, live_session, make_project, subscribed, write_notes

pytestmark = pytest.mark.parametrize("protocol", PROTOCOLS)

WATCH = 'subscription { deviceStatusChanged(project: "live") { deviceId status pendingDown } }'
READ = """query($progress: [ProgressInput!], $maxCount: Int! = 0) {
  actions(project: "live", deviceId: "laptop", progress: $progress, maxCount: $maxCount) {
    progress { table cursor }
  }
}"""


def watching(
    session: AsyncClientSession, query: str = WATCH, **variables: Any
) -> AbstractAsyncContextManager[AsyncGenerator[dict[str, Any], None]]:
    return subscribed(session, query, **variables)


def progress_of(answer: dict[str, Any]) -> list[dict[str, str]]:
    return [{"table": p["table"], "cursor": p["cursor"]} for p in answer["actions"]["progress"]]


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
    synced = await alice.data(READ)  # the laptop's first sync (a snapshot, empty yet)
    await write_notes(alice, [1, 2], device="phone")
    # The laptop syncs from the log, one action still waits. (Part way through a first sync's
    # snapshot nothing counts as received yet: both would be pending.)
    first = await alice.data(READ, progress=progress_of(synced), maxCount=1)
    admin = server.token("root", Role.ADMIN)
    async with live_session(server, admin, protocol) as session, watching(session) as stream:
        assert sorted(await changes(stream, 2)) == [
            ("laptop", "PENDING", 1),
            ("phone", "UP_TO_DATE", 0),
        ]
        await alice.data(READ, progress=progress_of(first))  # the laptop reads the rest
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


REPORT = """subscription($user: String, $checkConflicts: Boolean! = false) {
  syncStatusChanged(project: "live", user: $user, checkConflicts: $checkConflicts) {
    user syncStatus pendingSyncs devices { deviceId status } recommendations
  }
}"""


async def next_report(
    stream: AsyncGenerator[dict[str, Any], None], after: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The next report, or with ``after`` the next that differs from it in what REPORT selects:
    a report also comes when only what it does not select changed (a device's last sync, which
    a read's bookkeeping may record after the report that showed the read)."""
    async with asyncio.timeout(15):
        while True:
            report: dict[str, Any] = (await anext(stream))["syncStatusChanged"]
            if report != after:
                return report


async def test_dashboards_see_a_users_report_turn_healthy_after_a_device_reads(
    server: GatewayServer, protocol: str
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    await write_notes(alice, [1, 2], device="phone")
    await alice.data(
        'mutation { reportDevice(project: "live", deviceId: "laptop", name: "Laptop") '
        "{ deviceId } }"
    )
    feeds = server.app.state.services.status_feeds
    async with (
        live_session(server, server.token("root", Role.ADMIN), protocol) as admin_session,
        watching(admin_session, REPORT, user="alice") as admin_stream,
        live_session(server, server.token("alice", Role.PATIENT), protocol) as own_session,
        watching(own_session, REPORT, checkConflicts=True) as own_stream,
    ):
        shown = {}
        for stream in (admin_stream, own_stream):
            first = shown[stream] = await next_report(stream)
            assert (first["user"], first["syncStatus"], first["pendingSyncs"]) == (
                "alice",
                "DELAYED",
                2,
            )
            assert first["recommendations"][0].startswith("Laptop has 2 changes to receive")
        # one feed computes alice's state once per change for both dashboards
        assert feeds.watchers("live") == 2
        assert set(feeds.feed("live").states) == {"alice"}

        await alice.data(READ)  # the laptop reads everything
        for stream in (admin_stream, own_stream):
            report = shown[stream] = await next_report(stream, after=shown[stream])
            assert (report["syncStatus"], report["pendingSyncs"]) == ("HEALTHY", 0)
            assert report["devices"] == [
                {"deviceId": "laptop", "status": "UP_TO_DATE"},
                {"deviceId": "phone", "status": "UP_TO_DATE"},
            ]
            assert report["recommendations"] == ["All devices are up to date"]

        # a change elsewhere in the project leaves alice's report as it was: the next change
        # a dashboard sees is alice's own
        bob = server.client(server.token("bob", Role.PATIENT))
        await write_notes(bob, [3], device="bob-phone", user="bob")
        await write_notes(alice, [4], device="phone")  # this one changes it again
        report = await next_report(admin_stream, after=shown[admin_stream])
        assert (report["syncStatus"], report["pendingSyncs"]) == ("DELAYED", 1)


async def test_a_patient_cannot_watch_another_users_report(
    server: GatewayServer, protocol: str
) -> None:
    await make_project(server)
    async with (
        live_session(server, server.token("bob", Role.PATIENT), protocol) as session,
        watching(session, REPORT, user="alice") as stream,
    ):
        with pytest.raises(TransportQueryError) as refused:
            await next_report(stream)
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
