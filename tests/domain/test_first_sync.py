"""First sync from a snapshot (both databases): a read without progress gets each record once,
as it is, and then the log after the snapshot's horizon, with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from gateway.db import Database
from gateway.db.models import Action, DeliveredProgress, ProjectTable, Record, SyncEvent
from gateway.errors import GatewayError
from gateway.live.hub import Hub
from gateway.live.stream import stream_actions
from gateway.sync.actions import ActionType, DeliveredAction
from gateway.sync.cursor import Cursor
from gateway.sync.reader import ReadFilter, ReadRequest, TimeRange, read_actions
from gateway.sync.runs import RunInfo
from gateway.sync.writer import WriteRequest, write_actions, write_in_transaction
from tests.support.sync import (
    ALICE,
    PROJECT,
    RecordedEvents,
    act,
    make_study,
    read_all,
    rid,
    write,
)

pytestmark = pytest.mark.usefixtures("study")

Local = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture
async def study(db: Database) -> None:
    await make_study(db)


def apply(local: Local, actions: list[DeliveredAction]) -> Local:
    """What a device's own database does with the actions it receives."""
    for a in actions:
        key = (a.table, a.record_id)
        if a.action is ActionType.DELETE:
            local.pop(key, None)
        elif a.action is ActionType.INSERT:
            local[key] = json.loads(a.json_data or "{}")
        else:
            local[key] = local.get(key, {}) | json.loads(a.json_data or "{}")
    return local


async def server_records(db: Database, tables: tuple[str, ...] = ("notes",)) -> Local:
    async with db.session() as session:
        rows = await session.execute(
            select(ProjectTable.name, Record.record_id, Record.data)
            .join(ProjectTable, ProjectTable.id == Record.table_id)
            .where(Record.deleted.is_(False), ProjectTable.name.in_(tables))
        )
        return {(name, record_id): data for name, record_id, data in rows}


async def read(db: Database, progress: dict[str, str], **request: Any) -> Any:
    filter = request.pop("filter", ReadFilter(include_tables=["notes"]))
    max_bytes = request.pop("max_bytes", None)
    return await read_actions(
        db,
        ALICE,
        ReadRequest(PROJECT, progress=progress, filter=filter, **request),
        max_batch=1000,
        max_bytes=max_bytes,
    )


def tokens(batch: Any) -> dict[str, str]:
    return {p.table: p.cursor.encode() for p in batch.progress}


async def test_a_first_sync_gets_each_record_as_it_is_then_the_log_after_it(db: Database) -> None:
    await write(
        db,
        [
            act("notes", "INSERT", 1, 10, text="a"),
            act("notes", "UPDATE", 1, 11, order=2, done=True),
            act("notes", "UPDATE", 1, 12, text="a2"),
            act("notes", "INSERT", 2, 13, text="gone"),
            act("notes", "DELETE", 2, 14),
            act("notes", "INSERT", 3, 15, text="as sent"),
        ],
        device="phone",
    )
    actions, progress, reads = await read_all(db, device="tablet")
    assert reads == 1
    # One INSERT per record alive, with its data now and the time, order and log position of
    # its last change; the deleted record is not there.
    assert [(a.action, a.record_id, json.loads(a.json_data), a.time) for a in actions] == [
        (ActionType.INSERT, rid(1), {"text": "a2", "done": True}, 12),
        (ActionType.INSERT, rid(3), {"text": "as sent"}, 15),
    ]
    assert actions[1].json_data == '{"text": "as sent"}'  # never changed: the text as sent
    log = await read_all(db, device="tablet", snapshot=False)
    assert [a.position for a in actions] == [a.position for a in log[0]]  # the same versions
    assert (actions[0].source, actions[0].device_id) == ("local", "phone")
    assert Cursor.decode(progress["notes"]).time == 15  # the latest time it received

    await write(db, [act("notes", "UPDATE", 3, 20, text="later"), act("notes", "DELETE", 1, 21)])
    later, _, _ = await read_all(db, device="tablet", progress=progress)
    assert [(a.action, a.record_id) for a in later] == [
        (ActionType.UPDATE, rid(3)),
        (ActionType.DELETE, rid(1)),
    ]


async def test_a_snapshot_pages_while_writers_change_records(db: Database) -> None:
    """Records changed, deleted and created between the pages of a snapshot: each record comes
    once as it was when the snapshot began, and the log then brings exactly the changes made
    since, so the device ends with the server's records."""
    await write(db, [act("notes", "INSERT", n, n, text=f"v{n}") for n in range(1, 11)])
    first = await read(db, {}, device_id="tablet", max_count=4)
    assert (len(first.actions), first.has_more) == (4, True)
    snapshot_cursor = Cursor.decode(tokens(first)["notes"])
    assert snapshot_cursor.snapshot is not None
    await write(
        db,
        [
            act("notes", "UPDATE", 2, 100, text="after, delivered"),
            act("notes", "UPDATE", 6, 101, text="after, not yet delivered"),
            act("notes", "DELETE", 7, 102),
            act("notes", "INSERT", 11, 103, text="created after"),
        ],
    )
    local = apply({}, first.actions)
    progress, got = tokens(first), list(first.actions)
    while True:
        batch = await read(db, progress, device_id="tablet", max_count=4)
        apply(local, batch.actions)
        got += batch.actions
        progress = tokens(batch)
        if not batch.has_more:
            break
    snapshot = got[:10]  # a batch gives the snapshot first, then the log
    assert [a.record_id for a in snapshot] == [rid(n) for n in range(1, 11)]
    then = {a.record_id: json.loads(a.json_data or "") for a in snapshot}
    assert then[rid(6)] == {"text": "v6"} and then[rid(7)] == {"text": "v7"}
    assert local == await server_records(db)
    assert local[("notes", rid(6))] == {"text": "after, not yet delivered"}


async def test_every_later_action_comes_once_after_the_snapshot(db: Database) -> None:
    """One action per read, so nothing merges: the log part is exactly the actions after the
    snapshot's horizon."""
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 6)])
    progress: dict[str, str] = {}
    got: list[DeliveredAction] = []
    horizon = None
    step = 0
    while True:
        batch = await read(db, progress, device_id="tablet", max_count=1)
        got += batch.actions
        progress = tokens(batch)
        cursor = Cursor.decode(progress["notes"])
        if cursor.snapshot is not None:
            horizon = cursor.snapshot.horizon
        step += 1
        if step in (2, 4):  # writes while the snapshot is read
            await write(db, [act("notes", "UPDATE", step, 50 + step, text="changed")])
        if not batch.has_more:
            break
    assert horizon is not None
    snapshot, log = got[:5], got[5:]
    assert [a.action for a in snapshot] == [ActionType.INSERT] * 5
    async with db.session() as session:
        after = list(
            await session.scalars(
                select(Action.id).where(Action.id > 5).order_by(Action.xid, Action.id)
            )
        )
    assert [a.position for a in log] == after == [6, 7]


async def test_filters_tables_time_ranges_and_own_actions(db: Database) -> None:
    await write(
        db,
        [
            act("steps", "INSERT", 1, 1, utcTime=500, value=1.0),
            act("steps", "INSERT", 2, 2, utcTime=1500, value=1.0),
            act("steps", "UPDATE", 1, 3, utcTime=1200),  # moved into the range
            act("steps", "UPDATE", 2, 4, utcTime=2500),  # moved out of it
            act("notes", "INSERT", 3, 5, text="no time fields: the range is ignored"),
            act("cases", "INSERT", 4, 6, caseKey="k"),
        ],
        device="web",
    )
    await write(db, [act("notes", "INSERT", 5, 7, text="the tablet's own")], device="tablet")
    ranges = [TimeRange(t, 1000, 2000) for t in ("steps", "notes")]
    only = ReadFilter(exclude_tables=["cases"], time_ranges=ranges)
    actions, progress, _ = await read_all(db, device="phone", filter=only)
    # steps: the record in the range now; notes: phone never wrote there, so a snapshot too.
    assert sorted((a.table, a.record_id) for a in actions) == [
        ("notes", rid(3)),
        ("notes", rid(5)),
        ("steps", rid(1)),
    ]
    assert sorted(progress) == ["moods", "notes", "steps"]

    # The tablet wrote notes and leaves its own actions out: notes come from the log (a
    # snapshot cannot leave out what it changed itself), the other tables from snapshots.
    on_tablet, _, _ = await read_all(db, device="tablet")
    assert sorted((a.table, a.record_id, a.source) for a in on_tablet) == [
        ("cases", rid(4), "local"),
        ("notes", rid(3), "local"),
        ("steps", rid(1), "local"),
        ("steps", rid(2), "local"),
    ]
    own = ReadFilter(include_tables=["notes"], include_own=True)
    with_own, _, _ = await read_all(db, device="tablet", filter=own)
    assert sorted((a.record_id, a.source) for a in with_own) == [
        (rid(3), "local"),
        (rid(5), "remote"),
    ]


async def test_max_time_and_the_byte_limit_cut_a_snapshot_like_the_log(db: Database) -> None:
    times = [10, 50, 20]
    await write(db, [act("notes", "INSERT", n, t, text="x" * 10) for n, t in enumerate(times, 1)])
    bounded = await read(db, {}, max_time=20)
    assert ([a.time for a in bounded.actions], bounded.has_more) == ([10], False)
    rest = await read(db, tokens(bounded))
    assert [a.time for a in rest.actions] == [50, 20]

    small = await read(db, {}, max_bytes=50)
    assert ([a.time for a in small.actions], small.has_more) == ([10, 50], True)
    tail = await read(db, tokens(small), max_bytes=50)
    assert ([a.time for a in tail.actions], tail.has_more) == ([20], False)


async def test_delivered_progress_moves_once_the_snapshot_is_complete(db: Database) -> None:
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 4)], device="phone")

    async def delivered() -> tuple[int, int] | None:
        async with db.session() as session:
            row = (
                await session.execute(
                    select(DeliveredProgress.xid, DeliveredProgress.position).where(
                        DeliveredProgress.device_id == "tablet"
                    )
                )
            ).first()
        return None if row is None else (row[0], row[1])

    first = await read(db, {}, device_id="tablet", max_count=2)
    assert await delivered() == (0, 0)  # part of a snapshot counts for nothing yet
    last = await read(db, tokens(first), device_id="tablet", max_count=2)
    assert not last.has_more
    horizon = Cursor.decode(tokens(last)["notes"]).position
    assert await delivered() == (horizon.xid, horizon.id) != (0, 0)


async def test_snapshot_cursors_are_checked(db: Database) -> None:
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 4)])
    first = await read(db, {}, max_count=1)
    token = tokens(first)["notes"]
    assert Cursor.decode(token).encode() == token
    cursor = Cursor.decode(token)
    assert cursor.snapshot is not None
    at = cursor.snapshot.horizon
    forged = [
        f"s:{at.xid + 10**6}:{at.id + 10**6}:0::",  # a horizon the gateway never reached
        f"s:{at.xid}:{at.id}:-1::",
        f"s:{at.xid}:{at.id}::",
        "s:x:1:1::",
    ]
    for raw in forged:
        bad = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        with pytest.raises(GatewayError) as caught:
            await read(db, {"notes": bad})
        assert caught.value.code == "BAD_USER_INPUT", raw


async def test_a_snapshot_cursor_above_a_horizon_that_stepped_back_is_taken(db: Database) -> None:
    """PostgreSQL's horizon may step back a little (another database's transaction ending while
    it is computed counts as this one's), so a device may come back with a snapshot cursor above
    the current horizon. It is taken unless no horizon can ever have been that high: above one
    past the latest completed transaction."""
    if db.backend == "sqlite":
        pytest.skip("SQLite's horizon is the last action's id: it never steps back")
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 4)])
    holder = await asyncpg.connect(db.url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await holder.execute("BEGIN")
        held = int(await holder.fetchval("SELECT pg_current_xact_id()::text::bigint"))
        await write(db, [act("notes", "INSERT", 9, 9, text="later")])  # completes after it
        # the horizon stops at ``held``; one above it is below the latest completed + 1
        raw = f"s:{held + 1}:0:0::"
        token = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        batch = await read(db, {"notes": token}, max_count=2)
        assert [json.loads(a.json_data or "{}")["text"] for a in batch.actions] == ["x", "x"]
    finally:
        await holder.close()


class _Rollback(Exception):
    pass


async def test_first_sync_under_concurrent_writers(db: Database) -> None:
    """Writers insert, update and delete records (each its own set of records) and commit out
    of order, a fifth of their batches rolled back, while devices first-sync from a snapshot in
    small pages and then follow the log: each ends with exactly the server's records, and
    never gets the same version of a record twice."""
    rng = random.Random(13)
    await write(db, [act("notes", "INSERT", n, n, text="seed") for n in range(1, 201)])
    done = asyncio.Event()

    async def writer(w: int) -> None:
        mine = list(range(1 + w * 50, 51 + w * 50))  # seeded records of this writer
        fresh = 10_000 * (w + 1)
        for b in range(25):
            async with db.session() as session:
                live = set(
                    await session.scalars(select(Record.record_id).where(Record.deleted.is_(False)))
                )
            actions = []
            for k, n in enumerate(rng.sample(mine, rng.randint(1, 6))):  # one action a record
                time = 1_000 + b * 10 + k
                if rid(n) not in live:
                    fresh += 1
                    actions.append(act("notes", "INSERT", fresh, time, text="new"))
                    mine.append(fresh)
                elif rng.random() < 0.2:
                    actions.append(act("notes", "DELETE", n, time))
                else:
                    actions.append(act("notes", "UPDATE", n, time, text=f"w{w}b{b}"))
            try:
                async with db.transaction() as session:
                    await write_in_transaction(
                        session, ALICE, WriteRequest(PROJECT, actions, device_id=f"w{w}")
                    )
                    await asyncio.sleep(rng.uniform(0, 0.02))
                    if rng.random() < 0.2:
                        raise _Rollback
            except _Rollback:
                pass

    async def device(name: str) -> tuple[Local, list[DeliveredAction]]:
        progress: dict[str, str] = {}
        local: Local = {}
        got: list[DeliveredAction] = []
        while True:
            last_round = done.is_set()
            batch = await read(db, progress, device_id=name, max_count=rng.randint(1, 15))
            apply(local, batch.actions)
            got += batch.actions
            progress = tokens(batch)
            if not batch.has_more:
                if last_round:
                    return local, got
                await asyncio.sleep(0.002)

    devices = [asyncio.create_task(device(f"d{i}")) for i in range(3)]
    await asyncio.gather(*(writer(w) for w in range(4)))
    done.set()
    server = await server_records(db)
    for local, got in await asyncio.gather(*devices):
        assert local == server
        versions = [(a.record_id, a.position) for a in got]
        assert len(versions) == len(set(versions)), "a version was delivered twice"


async def test_a_reads_bookkeeping_is_finished_when_its_reader_goes_away(db: Database) -> None:
    """A client that disconnects while its read is being recorded: the GET, the run and their
    announcements still happen."""
    await write(db, [act("notes", "INSERT", 1, 1, text="x")], device="phone")
    announcing, gate, announced = asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Slow(RecordedEvents):
        async def runs_changed(self, runs: Sequence[RunInfo]) -> None:
            announcing.set()  # recorded, committed; the client goes away now
            await gate.wait()
            await super().runs_changed(runs)

        async def status_changed(self, project: str) -> None:
            await super().status_changed(project)
            announced.set()

    events = Slow()
    request = ReadRequest(PROJECT, device_id="tablet")
    reading = asyncio.create_task(read_actions(db, ALICE, request, max_batch=10, events=events))
    await asyncio.wait_for(announcing.wait(), 10)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    gate.set()
    await asyncio.wait_for(announced.wait(), 10)
    assert [run.status.value for run in events.runs] == ["COMPLETED"]
    assert await history(db) == ["GET"]


async def history(db: Database) -> list[str]:
    async with db.session() as session:
        found = await session.scalars(
            select(SyncEvent.direction).where(SyncEvent.device_id == "tablet")
        )
        return list(found)


async def test_a_subscription_without_progress_starts_from_the_snapshot(db: Database) -> None:
    """databaseActions: the records as they are, in pages, then the changes as they come."""
    await write(
        db,
        [act("notes", "INSERT", n, n, text="v0") for n in (1, 2, 3)]
        + [act("notes", "UPDATE", n, 10 + n, text="v1") for n in (1, 2, 3)],
        device="phone",
    )
    hub = Hub()
    request = ReadRequest(PROJECT, device_id="tablet", max_count=2)
    live = stream_actions(db, hub, ALICE, request, max_batch=100, poll_seconds=300.0)
    first, second = await anext(live), await anext(live)
    assert [(a.action, a.record_id, a.json_data) for a in first.actions + second.actions] == [
        (ActionType.INSERT, rid(n), '{"text": "v1"}') for n in (1, 2, 3)
    ]
    await write_actions(
        db,
        ALICE,
        WriteRequest(PROJECT, [act("notes", "DELETE", 2, 20)], device_id="phone"),
        max_batch=10,
        events=RecordedEvents(hub),
    )
    later = await asyncio.wait_for(anext(live), 10)
    assert [(a.action, a.record_id) for a in later.actions] == [(ActionType.DELETE, rid(2))]
    await live.aclose()  # type: ignore[attr-defined]
