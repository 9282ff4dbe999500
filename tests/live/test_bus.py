"""The bus between replicas carries wake-ups only: a lost message costs a delay, never an action;
a burst of commits wakes a subscriber a few times, not once per commit. On PostgreSQL (the only
database replicas share), on each bus."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.live.announce import BusAnnouncer
from gateway.live.coalesce import Coalescer
from gateway.live.hub import Hub
from gateway.live.payloads import encode, encode_runs, encode_status, pack
from gateway.sync.writer import WriteRequest, write_actions
from tests.support import GatewayServer, settings_for
from tests.support.live import (
    count_at_least,
    live_session,
    make_project,
    record_ids,
    subscription,
    take,
    write_notes,
)
from tests.support.sync import ADMIN, act, rid


@pytest.fixture(params=["postgres", "nats"])
def bus(request: pytest.FixtureRequest) -> str:
    if request.param == "nats":
        return str(request.getfixturevalue("nats_server"))
    return str(request.param)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def servers(postgres_url: str) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start(stack: ExitStack, database_url: str, **settings: Any) -> GatewayServer:
    return stack.enter_context(GatewayServer.running(settings_for(database_url, **settings)))


async def write_unannounced(database_url: str, n: int) -> None:
    """Action ``n`` of alice committed without any message on the bus: a lost message."""
    db = Database(database_url)
    try:
        action = act("notes", "INSERT", n, n, user="alice", text=f"#{n}")
        await write_actions(db, ADMIN, WriteRequest("live", [action], user="alice"), max_batch=10)
    finally:
        await db.dispose()


async def test_a_lost_bus_message_costs_a_delay_not_the_action(
    postgres_url: str, servers: ExitStack, bus: str
) -> None:
    # The subscriber's replica re-checks the log every second; nothing else could deliver.
    one = start(servers, postgres_url, bus=bus, live_poll_seconds=1.0)
    await make_project(one)
    async with (
        live_session(one, one.token("alice", Role.PATIENT), "graphql-transport-ws") as session,
        subscription(session, deviceId="laptop") as stream,
    ):
        await asyncio.sleep(0.5)  # subscribed and caught up
        await write_unannounced(postgres_url, 1)
        assert record_ids(await take(stream, count_at_least(1))) == [rid(1)]
        if bus.startswith("nats://"):
            # Another replica that cannot reach NATS: its publishes fail and are counted.
            two = start(servers, postgres_url, bus=f"nats://127.0.0.1:{closed_port()}")
            await write_notes(two.client(two.token("alice", Role.PATIENT)), [2])
            announcer = two.app.state.services.announcer
            assert isinstance(announcer, BusAnnouncer)
            assert announcer.publish_failures >= 1
            assert record_ids(await take(stream, count_at_least(1))) == [rid(2)]
        # Nothing more: no action twice.
        extra = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(2.5)
        assert not extra.done()
        extra.cancel()
        await asyncio.gather(extra, return_exceptions=True)


def count_wakes(hub: Hub, user: str) -> list[int]:
    """How often the hub is told to wake ``user``'s streams (one element per wake-up)."""
    seen: list[int] = []
    wake = hub.wake

    def counted(project_id: int, who: str, table_ids: Any) -> None:
        if who == user:
            seen.append(project_id)
        wake(project_id, who, table_ids)

    hub.wake = counted  # type: ignore[method-assign]
    return seen


BURST = 24


async def test_a_burst_of_commits_wakes_a_subscriber_a_few_times_and_loses_nothing(
    postgres_url: str, servers: ExitStack, bus: str
) -> None:
    """``BURST`` concurrent writes, each its own commit and message: the subscriber gets every
    action once, and is woken far fewer times than there were commits (a generous window, so
    that a slow machine still commits the burst within a few of them)."""
    one = start(servers, postgres_url, bus=bus, live_poll_seconds=300, bus_coalesce_ms=500)
    await make_project(one)
    wakes = count_wakes(one.app.state.services.hub, "alice")
    writer = one.client(one.token("alice", Role.PATIENT))
    async with (
        live_session(one, one.token("alice", Role.PATIENT), "graphql-transport-ws") as session,
        subscription(session, deviceId="laptop") as stream,
    ):
        await asyncio.sleep(0.5)  # subscribed and caught up
        await asyncio.gather(*(write_notes(writer, [n]) for n in range(1, BURST + 1)))
        got = await take(stream, count_at_least(BURST), seconds=30)
    assert sorted(record_ids(got)) == [rid(n) for n in range(1, BURST + 1)]
    assert len(wakes) <= BURST // 3, f"{len(wakes)} wake-ups for {BURST} commits"


async def test_messages_within_the_window_wake_once_with_everything_they_name() -> None:
    hub = Hub()
    coalescer = Coalescer(hub, window_seconds=0.05)
    wakes = count_wakes(hub, "alice")
    with (
        hub.listen(7, "alice", tables=[1]) as notes,
        hub.listen(7, "alice", tables=[2]) as steps,
        hub.listen_runs(7) as runs,
        hub.listen_status("live") as status,
    ):
        coalescer.deliver(encode(7, "alice", [1]))  # the first at once, opening the window
        assert wakes == [7] and notes.event.is_set()
        notes.event.clear()
        for n in range(50):  # the same window: passed on together, once, when it ends
            (message,) = pack([encode(7, "alice", [1 + n % 2]), *encode_runs(7, [n])])
            coalescer.deliver(message)
        coalescer.deliver(encode_status("live"))
        assert wakes == [7] and not (notes.event.is_set() or steps.event.is_set())
        await asyncio.sleep(0.2)
        assert wakes == [7, 7]
        assert notes.event.is_set() and steps.event.is_set() and status.event.is_set()
        assert runs.run_ids == set(range(50))
    assert (coalescer.received, coalescer.flushes) == (52, 2)
