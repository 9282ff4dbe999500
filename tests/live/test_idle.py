"""Many idle databaseActions subscriptions on one WebSocket (both databases, real uvicorn): a
write whose wake-up is lost still reaches each of them once, through the project's watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.sync.writer import WriteRequest, write_actions
from tests.support import GatewayServer, settings_for
from tests.support.live import live_session, make_project, record_ids, subscription, take
from tests.support.sync import ADMIN, act, rid

USERS = [f"user-{n}" for n in range(20)]
POLL = 0.3  # the watch's re-check: a lost wake-up costs about this much


@pytest.fixture
def server(migrated_url: str) -> Iterator[GatewayServer]:
    settings = settings_for(migrated_url, live_poll_seconds=POLL)
    with GatewayServer.running(settings) as running:
        yield running


async def write_unannounced(url: str, n: int) -> None:
    """Action ``n`` for every user, committed without announcing it (a lost NOTIFY)."""
    db = Database(url)
    try:
        for user in USERS:
            action = act("notes", "INSERT", n, n, user=user, text=f"#{n}")
            # From a device: the subscriber (an admin too) would not get its own deviceless
            # writes (SenSeeAct's includeOwn rule).
            request = WriteRequest("live", [action], user=user, device_id="importer")
            await write_actions(db, ADMIN, request, max_batch=10)
    finally:
        await db.dispose()


async def test_a_lost_wake_up_reaches_every_idle_subscription_once(
    server: GatewayServer, migrated_url: str
) -> None:
    await make_project(server)
    await write_unannounced(migrated_url, 1)  # each user's backlog
    token = server.token("root", Role.ADMIN)
    async with (
        live_session(server, token, "graphql-transport-ws") as session,
        AsyncExitStack() as s,
    ):
        streams: list[AsyncGenerator[dict[str, Any], None]] = [
            await s.enter_async_context(subscription(session, user=user)) for user in USERS
        ]
        for stream in streams:  # subscribed and caught up
            assert record_ids(await take(stream, lambda got: bool(got))) == [rid(1)]
        await write_unannounced(migrated_url, 2)
        for stream in streams:
            assert record_ids(await take(stream, lambda got: bool(got))) == [rid(2)]
        # Nothing more: not the same action again, after several more checks.
        pending = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(5 * POLL)
        assert not any(p.done() for p in pending)
        for p in pending:
            p.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
