"""syncRunUpdated over real WebSockets: a run's changes as they happen, per role, and across
replicas on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from typing import Any

from gql.client import AsyncClientSession

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, settings_for
from tests.support.live import live_session, make_project, subscribed

PROTOCOL = "graphql-transport-ws"
WATCH = """subscription($syncId: Int) {
  syncRunUpdated(project: "live", syncId: $syncId) {
    id syncId status recordsProcessed recordsUpdated currentStep completedAt
  }
}"""
CREATE = 'mutation { createSync(project: "live", name: "export") { id } }'
START = "mutation($syncId: Int!) { startSyncRun(syncId: $syncId) { id } }"
UPDATE = """mutation($id: Int!) {
  updateSyncRun(id: $id, counters: {recordsProcessed: 40}, currentStep: "Sending") { id }
}"""
COMPLETE = """mutation($id: Int!) {
  completeSyncRun(id: $id, counters: {recordsProcessed: 100, recordsUpdated: 98}) { id }
}"""


def watching(
    session: AsyncClientSession, **variables: Any
) -> AbstractAsyncContextManager[AsyncGenerator[dict[str, Any], None]]:
    return subscribed(session, WATCH, **variables)


async def next_run(stream: AsyncGenerator[dict[str, Any], None]) -> tuple[Any, ...]:
    async with asyncio.timeout(15):
        run = (await anext(stream))["syncRunUpdated"]
    return (
        run["id"], run["status"], run["recordsProcessed"], run["recordsUpdated"],
        run["currentStep"], run["completedAt"] is not None,
    )  # fmt: skip


async def started_run(client: GraphQLHttp) -> tuple[int, int]:
    sync_id = (await client.data(CREATE))["createSync"]["id"]
    return sync_id, (await client.data(START, syncId=sync_id))["startSyncRun"]["id"]


async def test_a_subscriber_sees_a_run_work_and_complete(server: GatewayServer) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    bob = server.client(server.token("bob", Role.PATIENT))
    sync_id, run_id = await started_run(alice)
    _, bob_run = await started_run(bob)
    async with (
        live_session(server, server.token("alice", Role.PATIENT), PROTOCOL) as session,
        watching(session, syncId=sync_id) as stream,
        live_session(server, server.token("bob", Role.PATIENT), PROTOCOL) as bob_session,
        watching(bob_session) as bob_stream,
    ):
        # first the runs still working (each sees only their own), then each change
        assert await next_run(stream) == (run_id, "WORKING", 0, 0, None, False)
        assert await next_run(bob_stream) == (bob_run, "WORKING", 0, 0, None, False)
        await alice.data(UPDATE, id=run_id)
        assert await next_run(stream) == (run_id, "WORKING", 40, 0, "Sending", False)
        await alice.data(COMPLETE, id=run_id)
        # A finished run has no current step.
        assert await next_run(stream) == (run_id, "COMPLETED", 100, 98, None, True)
        # bob's dashboard got none of alice's changes: his own is the next thing it shows
        await bob.data(COMPLETE, id=bob_run)
        assert await next_run(bob_stream) == (bob_run, "COMPLETED", 100, 98, None, True)
    feeds = server.app.state.services.run_feeds
    async with asyncio.timeout(5):
        while feeds.watchers(1):  # noqa: ASYNC110 -- the server stops it in its own time
            await asyncio.sleep(0.02)


async def test_changes_through_one_replica_reach_subscribers_of_another(
    postgres_url: str,
) -> None:
    settings = settings_for(postgres_url, live_poll_seconds=300)  # only a wake-up delivers
    with GatewayServer.running(settings) as one, GatewayServer.running(settings) as two:
        await make_project(one)
        alice = two.client(two.token("alice", Role.PATIENT))
        _, run_id = await started_run(alice)
        token = one.token("root", Role.ADMIN)
        async with live_session(one, token, PROTOCOL) as session, watching(session) as stream:
            assert await next_run(stream) == (run_id, "WORKING", 0, 0, None, False)
            await alice.data(COMPLETE, id=run_id)
            assert await next_run(stream) == (run_id, "COMPLETED", 100, 98, None, True)
