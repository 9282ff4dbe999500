"""A batch written in one statement per table (both databases): every action at its place in
the log, every record with its final state whether it was new or existed, duplicates found
after their records were deleted, and two writers of one new record never both win."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from gateway.db import Database
from gateway.db.models import Action, Record
from gateway.errors import GatewayError
from gateway.sync.writer import WriteOutcome, WriteRequest, write_in_transaction
from gateway.sync.writer.store import WrittenSince
from tests.support.sync import ALICE, PROJECT, act, make_study, rid, write

pytestmark = pytest.mark.usefixtures("study")


@pytest.fixture
async def study(db: Database) -> None:
    await make_study(db)


async def stored(db: Database) -> tuple[list[Action], dict[str, Record]]:
    async with db.session() as session:
        actions = list(await session.scalars(select(Action).order_by(Action.id)))
        records = {r.record_id: r for r in await session.scalars(select(Record))}
    return actions, records


async def test_a_batch_of_new_and_existing_records_over_tables(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 10, text="old"), act("steps", "INSERT", 2, 11,
                utcTime=5, value=1.0), act("notes", "INSERT", 3, 12, text="gone")])  # fmt: skip
    batch = [
        act("cases", "INSERT", 4, 20, caseKey="k-4", age=3),  # new
        act("notes", "UPDATE", 1, 21, done=True),  # existing, merged
        act("steps", "INSERT", 5, 22, utcTime=7, value=2.5),  # new, another table
        act("notes", "DELETE", 3, 23),  # existing, deleted
        act("notes", "INSERT", 6, 24, text="new", extra={"n": [1, 2.5, "x"]}),  # new
        act("steps", "UPDATE", 2, 25, value=9.0),  # existing
        act("notes", "UPDATE", 6, 26, text="newer"),  # new, changed in the same batch
    ]
    outcome = await write(db, batch, device="phone")
    assert (outcome.accepted, outcome.duplicates) == (list(range(7)), [])

    actions, records = await stored(db)
    written = actions[3:]
    # the log holds the batch in its order, each action as sent
    assert [(a.record_id, a.time, a.action) for a in written] == [
        (rid(n), time, kind) for n, time, kind in
        [(4, 20, "INSERT"), (1, 21, "UPDATE"), (5, 22, "INSERT"), (3, 23, "DELETE"),
         (6, 24, "INSERT"), (2, 25, "UPDATE"), (6, 26, "UPDATE")]
    ]  # fmt: skip
    assert [a.json_data for a in written] == [a.json_data for a in batch]
    assert [a.sample_time for a in written] == [None, None, 7, None, None, 5, None]
    # each record: its final data, the position of its last action, the writing device
    position = {rid(n): written[i].id for n, i in ((4, 0), (1, 1), (5, 2), (3, 3), (2, 5), (6, 6))}
    assert {k: r.position for k, r in records.items() if k in position} == position
    assert records[rid(1)].data == {"text": "old", "done": True}
    assert records[rid(2)].data == {"utcTime": 5, "value": 9.0}
    assert (records[rid(3)].deleted, records[rid(3)].data) == (True, {"text": "gone"})
    assert records[rid(4)].data == {"caseKey": "k-4", "age": 3}
    assert records[rid(4)].record_key == "k-4"
    assert records[rid(5)].data == {"utcTime": 7, "value": 2.5}
    assert records[rid(6)].data == {"text": "newer", "extra": {"n": [1, 2.5, "x"]}}
    assert {r.device_id for k, r in records.items() if k in position} == {"phone"}
    assert not any(r.deleted for k, r in records.items() if k != rid(3))


async def test_an_insert_keeps_its_json_as_sent_in_the_record(db: Database) -> None:
    text = '{"text": "\\u00e9t\\u00e9 \\ud83d\\ude00", "extra": {"deep": {"a": [null, true]}}}'
    await write(db, [replace(act("notes", "INSERT", 1, 10), json_data=text)])
    _, records = await stored(db)
    assert records[rid(1)].data == json.loads(text)


async def test_a_retry_after_its_records_were_deleted_is_still_a_duplicate(db: Database) -> None:
    batch = [act("notes", "INSERT", 1, 10, text="a"), act("steps", "INSERT", 2, 11, utcTime=1,
             value=1.0)]  # fmt: skip
    await write(db, batch)
    await write(db, [act("notes", "DELETE", 1, 20), act("steps", "DELETE", 2, 21)])
    again = await write(db, batch)
    assert (again.accepted, again.duplicates) == ([], [0, 1])
    actions, records = await stored(db)
    assert len(actions) == 4
    assert all(r.deleted for r in records.values())


async def test_two_writers_of_one_new_record_never_both_win(db: Database) -> None:
    """Each round, two devices insert the same new record at once (other identities): one is
    accepted and the other refused because the record exists, never both applied."""
    for n in range(1, 9):

        async def insert(time: int, device: str, n: int = n) -> WriteOutcome | GatewayError:
            batch = [act("notes", "INSERT", n, time, text=device)]
            try:
                return await write(db, batch, device=device)
            except GatewayError as refused:
                return refused

        results = await asyncio.gather(insert(100 * n, "phone"), insert(100 * n + 1, "laptop"))
        won = [r for r in results if isinstance(r, WriteOutcome)]
        lost = [r for r in results if isinstance(r, GatewayError)]
        assert len(won) == 1 and won[0].accepted == [0], results
        assert len(lost) == 1 and "record already exists" in str(lost[0]), results
    actions, records = await stored(db)
    assert len(actions) == len(records) == 8
    assert {r.position for r in records.values()} == {a.id for a in actions}


async def test_a_batch_that_waited_for_a_younger_writer_runs_again_after_it(db: Database) -> None:
    """The older transaction takes its id, then waits for a record a younger one writes and
    commits. Written as it is, its action would come before the younger one's in the log's
    (xid, id) order although it changes the record after it: it is refused (to run again),
    and run again it lands after it."""
    if db.backend == "sqlite":
        pytest.skip("SQLite's writers take turns: a younger one cannot commit in between")
    await write(db, [act("notes", "INSERT", 1, 10, text="first")])
    older_began, younger_wrote, younger_may_commit = (asyncio.Event() for _ in range(3))
    older_batch = [act("notes", "UPDATE", 1, 30, done=True)]

    async def older() -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT pg_current_xact_id()"))  # its id, first
            older_began.set()
            await younger_wrote.wait()
            await write_in_transaction(session, ALICE, WriteRequest(PROJECT, older_batch))

    async def younger() -> None:
        await older_began.wait()
        async with db.transaction() as session:
            batch = [act("notes", "UPDATE", 1, 20, text="second")]
            await write_in_transaction(session, ALICE, WriteRequest(PROJECT, batch))
            younger_wrote.set()
            await younger_may_commit.wait()

    waiting, writing = asyncio.create_task(older()), asyncio.create_task(younger())
    await asyncio.wait_for(younger_wrote.wait(), 10)
    await asyncio.sleep(0.2)  # the older batch now waits for the record's lock
    younger_may_commit.set()
    await asyncio.wait_for(writing, 10)
    with pytest.raises(WrittenSince):
        await asyncio.wait_for(waiting, 10)

    await write(db, older_batch)  # run again: a new transaction
    async with db.session() as session:
        log = (
            await session.execute(select(Action.time, Action.xid).order_by(Action.xid, Action.id))
        ).all()
    assert [time for time, _ in log] == [10, 20, 30]
