"""Conflict detection in the domain: what counts as an unseen change, and what a superseded
action means for readers and for review."""

from __future__ import annotations

import json

import pytest

from gateway.db import Database
from gateway.db.models import Record
from gateway.errors import BadUserInput
from gateway.sync import conflict_review
from gateway.sync.conflicts import ConflictStatus, changed_unseen
from gateway.sync.cursor import Position
from gateway.sync.reader import ReadRequest, read_stats
from tests.support.sync import ALICE, BOB, PROJECT, act, make_study, read_all, write


def stored(device_id: str | None, xid: int = 0, position: int = 10) -> Record:
    return Record(
        project_id=1, table_id=1, user_id="alice", record_id="r", record_key="r",
        position=position, xid=xid, device_id=device_id,
    )  # fmt: skip


def test_an_unseen_change_is_another_writers_change_after_what_the_device_received() -> None:
    other = stored("web", xid=5, position=10)
    assert changed_unseen(other, "mac", None, None)  # the mac never read the table
    assert changed_unseen(other, "mac", Position(5, 9), None)
    assert not changed_unseen(other, "mac", Position(5, 10), None)  # it received that version
    assert not changed_unseen(other, "mac", Position(6, 1), None)  # a later transaction
    assert not changed_unseen(stored("mac"), "mac", None, None)  # its own change
    # Without a device, only a baseVersion tells what the writer saw.
    assert not changed_unseen(other, None, None, None)
    assert changed_unseen(other, None, None, 9)
    assert not changed_unseen(other, None, None, 10)
    assert changed_unseen(stored("mac"), "mac", None, 9)  # a baseVersion always decides


async def test_superseded_actions_are_skipped_by_every_reader(db: Database) -> None:
    await make_study(db)
    await write(db, [act("notes", "INSERT", 1, 1_000, text="first")], device="mac")
    await read_all(db, device="web")
    await write(db, [act("notes", "UPDATE", 1, 3_000, text="web")], device="web")
    await write(db, [act("notes", "UPDATE", 1, 2_000, text="mac")], device="mac")

    # A frontend (no device) replaying the log one action per batch, so nothing merges: the
    # winner only; a first sync from the snapshot gets the record as the winner left it.
    actions, _, _ = await read_all(db, batch=1, snapshot=False)
    assert [(a.action, json.loads(a.json_data)) for a in actions] == [
        ("INSERT", {"text": "first"}),
        ("UPDATE", {"text": "web"}),
    ]
    actions, _, _ = await read_all(db, batch=1)
    assert [(a.action, json.loads(a.json_data)) for a in actions] == [("INSERT", {"text": "web"})]
    stats = await read_stats(db, ALICE, ReadRequest(project=PROJECT, progress={}))
    assert (stats.count, stats.latest_time) == (2, 3_000)


async def test_conflicts_page_newest_first_and_stay_private(db: Database) -> None:
    await make_study(db)
    for n in (1, 2, 3):
        await write(db, [act("notes", "INSERT", n, 1_000, text="v0")], device="mac")
    await read_all(db, device="web")
    for n in (1, 2, 3):
        await write(db, [act("notes", "UPDATE", n, 3_000, text="web")], device="web")
        await write(db, [act("notes", "UPDATE", n, 2_000, text="mac")], device="mac")

    first = await conflict_review.list_conflicts(db, ALICE, PROJECT, first=2)
    assert [c.record_id for c in first.conflicts] == [f"{3:032x}", f"{2:032x}"]
    assert first.has_next_page
    rest = await conflict_review.list_conflicts(
        db, ALICE, PROJECT, first=2, after=first.conflicts[-1].cursor
    )
    assert [c.record_id for c in rest.conflicts] == [f"{1:032x}"]
    assert not rest.has_next_page
    assert all(c.status is ConflictStatus.OPEN for c in first.conflicts + rest.conflicts)
    assert (await conflict_review.list_conflicts(db, BOB, PROJECT)).conflicts == []
    with pytest.raises(BadUserInput):
        await conflict_review.list_conflicts(db, ALICE, PROJECT, after="bm90LWEtY3Vyc29y")
    with pytest.raises(BadUserInput):
        await conflict_review.list_conflicts(db, ALICE, PROJECT, first=0)
