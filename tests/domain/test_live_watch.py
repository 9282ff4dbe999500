"""One safety re-check per project for its idle live streams (both databases): a lost wake-up
costs at most the poll interval, never an action, and idle streams do not each query."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Project
from gateway.errors import Forbidden
from gateway.live.hub import Hub
from gateway.live.stream import stream_actions
from gateway.live.watch import LogWatch
from gateway.sync import projects
from gateway.sync.grants import grant_access, revoke_access
from gateway.sync.reader import ReadBatch, ReadRequest
from gateway.sync.runs import sweep_runs
from gateway.sync.writer import WriteRequest, write_actions
from tests.support.sync import ADMIN, ALICE, BOB, CAROL, PROJECT, RecordedEvents, act, make_study

POLL = 0.2  # short: a lost wake-up is found by the project's watch within it
TIMEOUT = 20.0


def stream(
    db: Database, hub: Hub, principal: Principal, user: str | None = None
) -> AsyncIterator[ReadBatch]:
    return stream_actions(
        db, hub, principal, ReadRequest(PROJECT, user=user), max_batch=10_000, poll_seconds=POLL
    )


async def write(db: Database, principal: Principal, n: int, hub: Hub | None = None) -> None:
    """One action of ``principal``'s at time ``n``; without ``hub`` its wake-up is lost."""
    await write_actions(
        db,
        principal,
        WriteRequest(
            PROJECT,
            [act("notes", "INSERT", n, n, user=principal.user_id, text="x")],
            device_id="writer",
        ),
        max_batch=10,
        events=RecordedEvents(hub),
    )


async def next_times(live: AsyncIterator[ReadBatch]) -> list[int]:
    return [a.time for a in (await asyncio.wait_for(anext(live), TIMEOUT)).actions]


async def project_id(db: Database) -> int:
    async with db.session() as session:
        found = await session.scalar(select(Project.id).where(Project.code == PROJECT))
    assert found is not None
    return found


async def the_watch(db: Database, hub: Hub) -> LogWatch:
    assert hub.log_watches is not None
    watch = hub.log_watches.feed(await project_id(db))
    assert watch is not None
    return watch


async def checks(watch: LogWatch, count: int) -> None:
    """Until the project's watch completed ``count`` more checks."""
    until = watch.checks + count
    async with asyncio.timeout(TIMEOUT):
        while watch.checks < until:  # noqa: ASYNC110 (the watch keeps a count, no event)
            await asyncio.sleep(POLL / 4)


async def open_caught_up(
    db: Database, hub: Hub, readers: list[Principal]
) -> list[AsyncIterator[ReadBatch]]:
    """A stream per reader of its own data, each past its backlog (its action at time 1)."""
    streams = [stream(db, hub, reader) for reader in readers]
    for live in streams:
        assert await next_times(live) == [1]
    return streams


async def close(streams: list[AsyncIterator[ReadBatch]]) -> None:
    for live in streams:
        await live.aclose()  # type: ignore[attr-defined]


async def test_idle_streams_get_a_lost_wake_up_exactly_once(db: Database) -> None:
    await make_study(db)
    hub = Hub()
    for user in (ALICE, BOB):
        await write(db, user, 1)
    streams = await open_caught_up(db, hub, [ALICE, BOB] * 10)
    # Writes whose wake-ups never arrive (a NOTIFY lost): the watch finds them.
    for user in (ALICE, BOB):
        await write(db, user, 2)
    assert [await next_times(live) for live in streams] == [[2]] * 20
    # Then a wake-up that arrives: only the new action, nothing repeated.
    for user in (ALICE, BOB):
        await write(db, user, 3, hub)
    assert [await next_times(live) for live in streams] == [[3]] * 20
    # And nothing more, after several more checks.
    pending = [asyncio.ensure_future(anext(live)) for live in streams]
    await checks(await the_watch(db, hub), 3)
    assert not any(p.done() for p in pending)
    for p in pending:
        p.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await close(streams)
    assert hub.log_watches is not None
    assert hub.log_watches.watchers(await project_id(db)) == 0  # stopped with the last stream


@contextlib.contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements the database is sent while the block runs."""
    sent: list[str] = []

    def count(*args: Any) -> None:
        if args[2] not in ("BEGIN", "COMMIT", "ROLLBACK"):  # SQLite's, not queries
            sent.append(args[2])

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


@pytest.mark.parametrize("count", [2, 40])
async def test_idle_streams_do_not_each_query_the_database(db: Database, count: int) -> None:
    await make_study(db)
    hub = Hub()
    await write(db, ALICE, 1)
    streams = await open_caught_up(db, hub, [ALICE] * count)
    watch = await the_watch(db, hub)
    await checks(watch, 1)
    with statements(db) as sent:
        await checks(watch, 5)
    # Per check: the horizon, what became readable (when the horizon moved), who may see the
    # project; however many streams are idle.
    assert len(sent) <= 5 * 3, sent
    await close(streams)


@pytest.mark.parametrize("withdrawn", ["grant revoked", "membership removed"])
async def test_a_stream_ends_when_access_goes_and_the_wake_up_is_lost(
    db: Database, withdrawn: str
) -> None:
    await make_study(db)
    hub = Hub()
    await grant_access(db, ALICE, PROJECT, "dr-carol")
    await write(db, ALICE, 1)
    await write(db, CAROL, 1)
    carol = stream(db, hub, CAROL, user="alice")  # alice's data, through her grant
    assert await next_times(carol) == [1]
    bystander = stream(db, hub, CAROL)  # dr-carol's own data, which she keeps
    assert await next_times(bystander) == [1]
    pending = asyncio.ensure_future(anext(bystander))
    # Neither withdrawal announces itself here (events: none): the watch must notice.
    if withdrawn == "grant revoked":
        assert await revoke_access(db, ALICE, PROJECT, "dr-carol")
    else:
        await projects.remove_member(db, ADMIN, PROJECT, "alice")
    with pytest.raises(Forbidden):
        await asyncio.wait_for(anext(carol), TIMEOUT)
    await checks(await the_watch(db, hub), 2)
    assert not pending.done()  # woken, it read again, and still may: it goes on
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    await close([bystander])


async def test_idle_device_streams_are_kept_working_in_one_statement_per_check(
    db: Database,
) -> None:
    await make_study(db)
    hub = Hub()
    await write(db, ALICE, 1)
    timeout = 1.0  # each run touched every third of it at least, or the sweeper fails it
    streams = [
        stream_actions(
            db,
            hub,
            ALICE,
            ReadRequest(PROJECT, device_id=f"tablet-{n}"),
            max_batch=10_000,
            poll_seconds=POLL,
            run_timeout_seconds=timeout,
        )
        for n in range(8)
    ]
    for live in streams:
        assert await next_times(live) == [1]
    watch = await the_watch(db, hub)
    with statements(db) as sent:
        await asyncio.sleep(3 * timeout)  # idle for longer than a run's timeout
        assert not await sweep_runs(db, timeout)  # no run was left to time out
    touches = [s for s in sent if s.lstrip().upper().startswith("UPDATE SYNC_RUNS")]
    assert touches and len(touches) <= watch.checks  # all due runs in one statement a check
    await close(streams)
