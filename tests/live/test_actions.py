"""databaseActions over real WebSockets (both protocols, both databases)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest
from gql.transport.exceptions import TransportQueryError

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, create_project, settings_for
from tests.support.live import (
    PROTOCOLS,
    count_at_least,
    live_session,
    make_project,
    progress_of,
    record_ids,
    subscription,
    take,
    write_notes,
)

pytestmark = pytest.mark.parametrize("protocol", PROTOCOLS)


def rid(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    await make_project(server)
    return server.client(server.token("alice", Role.PATIENT))


async def test_backlog_in_batches_then_live(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    await write_notes(alice, range(1, 6))
    token = server.token("alice", Role.PATIENT)
    async with (
        live_session(server, token, protocol) as session,
        subscription(session, maxCount=2, deviceId="laptop") as stream,
    ):
        backlog = await take(stream, count_at_least(5))
        assert [len(b["actions"]) for b in backlog] == [2, 2, 1]
        assert [b["hasMore"] for b in backlog] == [True, True, False]
        await write_notes(alice, [6, 7])
        live = await take(stream, count_at_least(2))
    assert record_ids(backlog) + record_ids(live) == [rid(n) for n in range(1, 8)]
    assert {a["deviceId"] for b in live for a in b["actions"]} == {"phone"}


async def test_resuming_with_the_last_progress_gets_exactly_what_was_missed(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    token = server.token("alice", Role.PATIENT)
    await write_notes(alice, [1, 2])
    async with (
        live_session(server, token, protocol) as session,
        subscription(session, deviceId="laptop") as stream,
    ):
        first = await take(stream, count_at_least(2))
    await write_notes(alice, [3, 4, 5])  # while disconnected
    resume = progress_of(first[-1])
    async with (
        live_session(server, token, protocol) as session,
        subscription(session, deviceId="laptop", progress=resume) as stream,
    ):
        missed = await take(stream, count_at_least(3))
        await write_notes(alice, [6])
        more = await take(stream, count_at_least(1))
    assert record_ids(missed) == [rid(3), rid(4), rid(5)]
    assert record_ids(more) == [rid(6)]


async def test_filters_and_own_device_apply_live(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    token = server.token("alice", Role.PATIENT)
    only_others = {"excludeTables": ["steps"], "includeOwn": False}
    async with (
        live_session(server, token, protocol) as session,
        subscription(session, deviceId="phone", filter=only_others) as stream,
    ):
        collect = asyncio.create_task(take(stream, count_at_least(1)))
        await asyncio.sleep(0.3)
        await write_notes(alice, [1], device="phone")  # own device: left out
        await write_notes(alice, [2], table="steps", device="laptop")  # excluded table
        await write_notes(alice, [3], device="laptop")  # the one that arrives
        got = await collect
    assert record_ids(got) == [rid(3)]
    assert got[0]["actions"][0]["source"] == "local"


async def test_a_subscriber_never_receives_another_users_actions(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    bob = server.client(server.token("bob", Role.PATIENT))
    async with (
        live_session(server, server.token("bob", Role.PATIENT), protocol) as session,
        subscription(session) as stream,
    ):
        collect = asyncio.create_task(take(stream, count_at_least(1)))
        await asyncio.sleep(0.3)
        await write_notes(alice, [1, 2])
        await write_notes(bob, [3], user="bob")
        got = await collect
    assert [(a["user"], a["recordId"]) for b in got for a in b["actions"]] == [("bob", rid(3))]
    async with (
        live_session(server, server.token("bob", Role.PATIENT), protocol) as session,
        subscription(session, user="alice") as stream,
    ):
        with pytest.raises(TransportQueryError) as refused:
            await take(stream, count_at_least(1))
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_actions_committed_during_catch_up_arrive_exactly_once(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    await write_notes(alice, range(1, 201))
    token = server.token("alice", Role.PATIENT)

    async def keep_writing() -> None:
        for start in range(201, 261, 5):
            await write_notes(alice, range(start, start + 5), device="laptop")
            await asyncio.sleep(0.01)

    async with (
        live_session(server, token, protocol) as session,
        subscription(session, deviceId="tablet", maxCount=7) as stream,
    ):
        writer = asyncio.create_task(keep_writing())
        got = await take(stream, count_at_least(260), seconds=60)
        await writer
    assert sorted(record_ids(got)) == [rid(n) for n in range(1, 261)]
    assert len(record_ids(got)) == 260


async def test_project_without_tables_ends_with_no_data(
    server: GatewayServer, protocol: str
) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "empty", "Empty")
    async with (
        live_session(server, server.token("alice", Role.PATIENT), protocol) as session,
        subscription(session, project="empty") as stream,
    ):
        with pytest.raises(TransportQueryError) as ended:
            await take(stream, count_at_least(1))
    error = (ended.value.errors or [{}])[0]
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "NO_DATA"}


async def test_subscription_ends_when_its_token_expires(
    server: GatewayServer, alice: GraphQLHttp, protocol: str
) -> None:
    short = server.token("alice", Role.PATIENT, ttl=timedelta(seconds=2))
    async with (
        live_session(server, short, protocol) as session,
        subscription(session) as stream,
    ):
        with pytest.raises(TransportQueryError) as ended:
            await take(stream, lambda _: False, seconds=20)
    assert (ended.value.errors or [{}])[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_subscriptions_per_connection_are_capped(migrated_url: str, protocol: str) -> None:
    with GatewayServer.running(
        settings_for(migrated_url, max_subscriptions_per_connection=1)
    ) as server:
        await make_project(server)
        token = server.token("alice", Role.PATIENT)
        async with (
            live_session(server, token, protocol) as session,
            subscription(session) as first,
            subscription(session) as second,
        ):
            # the first one runs (it is waiting for actions); the second is over the cap
            waiting = asyncio.create_task(take(first, lambda _: False, seconds=30))
            await asyncio.sleep(0.5)
            with pytest.raises(TransportQueryError) as refused:
                await take(second, count_at_least(1))
            assert not waiting.done()
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    assert (refused.value.errors or [{}])[0]["extensions"]["code"] == "LIMIT_EXCEEDED"
