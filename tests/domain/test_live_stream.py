"""The live stream in the domain layer (both databases): slow consumers and wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sqlalchemy import func, select

from gateway.db import Database
from gateway.db.migrate import upgrade
from gateway.db.models import SyncEvent
from gateway.live.hub import Hub
from gateway.live.stream import stream_actions
from gateway.services import Services
from gateway.sync.reader import ReadBatch, ReadRequest
from gateway.sync.writer import WriteRequest, write_actions
from tests.support import settings_for
from tests.support.sync import ALICE, PROJECT, RecordedEvents, act, make_study

POLL = 300.0  # far beyond the test: only wake-ups can deliver


def stream(db: Database, hub: Hub, max_count: int = 0) -> AsyncIterator[ReadBatch]:
    return stream_actions(
        db, hub, ALICE, ReadRequest(PROJECT, device_id="reader", max_count=max_count),
        max_batch=10_000, poll_seconds=POLL,
    )  # fmt: skip


async def write_one(db: Database, hub: Hub, n: int) -> None:
    await write_actions(
        db,
        ALICE,
        WriteRequest(PROJECT, [act("notes", "INSERT", n, n, text="x")], device_id="writer"),
        max_batch=10,
        events=RecordedEvents(hub),
    )


async def test_a_stalled_consumer_holds_up_no_one_and_later_gets_larger_batches(
    db: Database,
) -> None:
    await make_study(db)
    hub = Hub()
    slow, fast = stream(db, hub), stream(db, hub)
    await write_one(db, hub, 1)
    assert [a.time for a in (await anext(slow)).actions] == [1]  # both registered and caught up
    assert [a.time for a in (await anext(fast)).actions] == [1]

    for n in range(2, 22):  # 20 batches while ``slow`` reads nothing
        await write_one(db, hub, n)
        batch = await asyncio.wait_for(anext(fast), 10)
        assert [a.time for a in batch.actions] == [n]

    # The stalled stream kept one pending wake-up, not twenty: it catches up in one read.
    caught_up = await asyncio.wait_for(anext(slow), 10)
    assert [a.time for a in caught_up.actions] == list(range(2, 22))
    assert hub.subscribers == 2
    await slow.aclose()  # type: ignore[attr-defined]
    await fast.aclose()  # type: ignore[attr-defined]
    assert hub.subscribers == 0


async def test_a_lost_wake_up_is_recovered_by_wake_all(db: Database) -> None:
    await make_study(db)
    hub = Hub()
    live = stream(db, hub)
    await write_one(db, hub, 1)
    await anext(live)
    # A write whose wake-up never arrives (a notification lost with its connection) ...
    await write_actions(
        db, ALICE,
        WriteRequest(PROJECT, [act("notes", "INSERT", 2, 2, text="x")], device_id="writer"),
        max_batch=10,
    )  # fmt: skip
    pending = asyncio.create_task(anext(live))
    await asyncio.sleep(0.3)
    assert not pending.done()
    hub.wake_all()  # ... what a replica does after reconnecting its LISTEN connection
    assert [a.time for a in (await asyncio.wait_for(pending, 10)).actions] == [2]
    await live.aclose()  # type: ignore[attr-defined]


async def test_a_failed_announcement_does_not_fail_the_committed_write(migrated_url: str) -> None:
    services = Services.create(settings_for(migrated_url))

    class Broken:
        hub = services.hub

        async def stage(self, *_: object) -> bool:
            return False  # as on SQLite: announced once committed

        async def announce(self, *_: object) -> None:
            raise ConnectionError("the notification channel is down")

    services.announcer = Broken()  # type: ignore[assignment]
    await upgrade(services.db)
    try:
        await make_study(services.db)
        outcome = await write_actions(
            services.db,
            ALICE,
            WriteRequest(PROJECT, [act("notes", "INSERT", 1, 1, text="x")]),
            max_batch=10,
            events=services,
        )
        assert outcome.accepted == [0]
    finally:
        await services.db.dispose()


async def test_a_subscription_adds_at_most_one_get_per_interval(db: Database) -> None:
    await make_study(db)
    hub = Hub()
    live = stream(db, hub)  # history interval: the default minute
    for n in range(1, 4):
        await write_one(db, hub, n)
        assert [a.time for a in (await asyncio.wait_for(anext(live), 10)).actions] == [n]
    await live.aclose()  # type: ignore[attr-defined]
    async with db.session() as session:
        gets = await session.scalar(
            select(func.count()).where(
                SyncEvent.direction == "GET", SyncEvent.device_id == "reader"
            )
        )
    assert gets == 1
