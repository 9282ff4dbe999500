"""Writing to the log (domain layer, both databases): validation, atomicity, idempotency."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.db import Database
from gateway.db.models import Action, Record, WriteProgress
from gateway.errors import GatewayError
from gateway.sync.actions import IncomingAction
from gateway.sync.grants import grant_access
from gateway.sync.writer import WriteRequest, write_actions, write_progress
from tests.support.sync import ADMIN, ALICE, BOB, CAROL, PROJECT, act, make_study, rid, write

pytestmark = pytest.mark.usefixtures("study")


@pytest.fixture
async def study(db: Database) -> None:
    await make_study(db)


async def counts(db: Database) -> tuple[int, ...]:
    async with db.session() as session:
        return tuple(
            [
                await session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Action, Record, WriteProgress)
            ]
        )


async def refused(db: Database, actions: list[IncomingAction], **kw: Any) -> GatewayError:
    before = await counts(db)
    with pytest.raises(GatewayError) as caught:
        await write(db, actions, **kw)
    assert await counts(db) == before, "a refused batch must write nothing"
    return caught.value


async def test_a_batch_is_written_with_its_records_and_progress(db: Database) -> None:
    outcome = await write(
        db,
        [
            act("steps", "INSERT", 1, time=100, utcTime=1442737800000, value=10.0),
            act("steps", "UPDATE", 1, time=101, value=11.5),
            act("notes", "INSERT", 2, time=102, text="hello", extra={"tags": ["a"]}),
            act("cases", "INSERT", 3, time=103, caseKey="4480489263555", age=40),
        ],
        device="phone",
    )
    assert (outcome.accepted, outcome.duplicates) == ([0, 1, 2, 3], [])
    assert [(m.table, m.time, m.order) for m in outcome.progress] == [
        ("cases", 103, 0),
        ("notes", 102, 0),
        ("steps", 101, 0),
    ]
    async with db.session() as session:
        records = {r.record_id: r for r in await session.scalars(select(Record))}
        actions = (await session.scalars(select(Action).order_by(Action.id))).all()
    assert records[rid(1)].data == {"utcTime": 1442737800000, "value": 11.5}
    assert records[rid(1)].position == actions[1].id
    assert records[rid(1)].device_id == "phone"
    assert records[rid(3)].record_key == "4480489263555"
    assert records[rid(2)].record_key == rid(2)
    assert [a.sample_time for a in actions] == [1442737800000, 1442737800000, None, None]
    assert [a.device_id for a in actions] == ["phone"] * 4
    # jsonData is kept as the device sent it
    assert json.loads(actions[2].json_data or "") == {"text": "hello", "extra": {"tags": ["a"]}}


async def test_sample_time_comes_from_local_time_and_survives_updates_and_deletes(
    db: Database,
) -> None:
    await write(
        db,
        [
            act("moods", "INSERT", 1, time=1, localTime="2015-09-20T10:30:00.000", score=3),
            act("moods", "UPDATE", 1, time=2, score=4),
            act("moods", "DELETE", 1, time=3),
        ],
    )
    async with db.session() as session:
        samples = (await session.scalars(select(Action.sample_time).order_by(Action.id))).all()
        record = await session.scalar(select(Record))
    assert samples == [1442745000000] * 3
    assert record is not None and record.deleted


async def test_dashed_record_ids_name_the_same_record(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 7, time=1, text="a")])
    dashed = "00000000-0000-0000-0000-000000000007"
    await write(db, [replace(act("notes", "UPDATE", 7, time=2, text="b"), record_id=dashed)])
    async with db.session() as session:
        record = await session.scalar(select(Record))
    assert record is not None and (record.record_id, record.data) == (rid(7), {"text": "b"})


@pytest.mark.parametrize(
    ("actions", "kw", "code", "reason"),
    [
        ([act("ghosts", "INSERT", 1, 1, x=1)], {}, "TABLE_NOT_ALLOWED", "does not exist"),
        ([act("notes", "INSERT", 1, 1, text="a")], {"exclude_tables": ["notes"]},
         "TABLE_NOT_ALLOWED", "excluded"),
        ([act("notes", "INSERT", 1, 1, text="a")], {"include_tables": ["steps"]},
         "TABLE_NOT_ALLOWED", "excluded"),
        ([act("notes", "INSERT", 1, 1, text="a", user="bob")], {}, "VALIDATION_FAILED",
         "differs from the target user"),
        ([act("notes", "INSERT", 1, -5, text="a")], {}, "VALIDATION_FAILED", "time"),
        ([act("notes", "INSERT", 1, 1, order=-1, text="a")], {}, "VALIDATION_FAILED", "order"),
        ([act("notes", "INSERT", 1, 1)], {}, "VALIDATION_FAILED", "required field(s) missing"),
        ([act("notes", "INSERT", 1, 1, text=3)], {}, "VALIDATION_FAILED", "must be STRING"),
        ([act("notes", "INSERT", 1, 1, text="a", color="red")], {}, "VALIDATION_FAILED",
         "not declared"),
        ([act("notes", "UPDATE", 1, 1, text="a")], {}, "VALIDATION_FAILED", "does not exist"),
        ([act("notes", "DELETE", 1, 1)], {}, "VALIDATION_FAILED", "does not exist"),
        ([act("notes", "INSERT", 1, 1, text="a"), act("notes", "INSERT", 1, 2, text="b")], {},
         "VALIDATION_FAILED", "already exists"),
        ([act("notes", "INSERT", 1, 1, text="a"), act("notes", "DELETE", 1, 2),
          act("notes", "UPDATE", 1, 3, text="c")], {}, "VALIDATION_FAILED", "does not exist"),
    ],
)  # fmt: skip
async def test_invalid_actions_refuse_the_batch(
    db: Database, actions: list[IncomingAction], kw: dict[str, Any], code: str, reason: str
) -> None:
    error = await refused(db, actions, **kw)
    assert error.code == code
    assert reason in error.message
    assert error.details["invalidActions"][-1]["code"] == code


async def test_unknown_tables_in_include_or_exclude_are_bad_input(db: Database) -> None:
    note = act("notes", "INSERT", 1, 1, text="a")
    assert (await refused(db, [note], include_tables=["nots"])).code == "BAD_USER_INPUT"
    assert (await refused(db, [note], exclude_tables=["nots"])).code == "BAD_USER_INPUT"


async def test_bad_record_id_json_and_delete_data_are_listed(db: Database) -> None:
    bad_id = replace(act("notes", "INSERT", 1, 1, text="a"), record_id="not-a-uuid")
    bad_json = replace(act("notes", "INSERT", 2, 1, text="a"), json_data="{oops")
    delete_with_data = replace(act("notes", "DELETE", 3, 1), json_data='{"text": "x"}')
    error = await refused(db, [bad_id, bad_json, delete_with_data])
    assert error.code == "VALIDATION_FAILED"
    reasons = [(p["index"], p["reason"]) for p in error.details["invalidActions"]]
    assert [i for i, _ in reasons] == [0, 1, 2]
    assert "not a UUID" in reasons[0][1]
    assert "not valid JSON" in reasons[1][1]
    assert "carries no jsonData" in reasons[2][1]


async def test_every_invalid_action_is_listed_and_the_valid_ones_are_not_written(
    db: Database,
) -> None:
    error = await refused(
        db,
        [
            act("notes", "INSERT", 1, 1, text="fine"),
            act("notes", "INSERT", 2, 2, text=1),
            act("steps", "INSERT", 3, 3, value=1.0),
            act("ghosts", "INSERT", 4, 4, x=1),
        ],
    )
    assert error.code == "TABLE_NOT_ALLOWED"  # a table problem decides the code
    assert [(p["index"], p["code"]) for p in error.details["invalidActions"]] == [
        (1, "VALIDATION_FAILED"),
        (2, "VALIDATION_FAILED"),
        (3, "TABLE_NOT_ALLOWED"),
    ]


async def test_batches_over_the_limit_are_refused(db: Database) -> None:
    actions = [act("notes", "INSERT", n, n, text="x") for n in range(1, 6)]
    error = await refused(db, actions, max_batch=4)
    assert (error.code, error.details["limit"]) == ("LIMIT_EXCEEDED", 4)
    assert (await write(db, actions, max_batch=5)).accepted == [0, 1, 2, 3, 4]


async def test_a_retried_batch_changes_nothing_and_reports_duplicates(db: Database) -> None:
    batch = [
        act("notes", "INSERT", 1, 10, text="a"),
        act("notes", "UPDATE", 1, 11, text="b"),
        act("steps", "INSERT", 2, 12, utcTime=5, value=1.0),
    ]
    first = await write(db, batch, device="phone")
    before = await counts(db)
    again = await write(db, batch, device="phone")
    assert (again.accepted, again.duplicates) == ([], [0, 1, 2])
    assert again.progress == first.progress
    assert await counts(db) == before
    # a retry that carries one more action writes only that one
    more = await write(db, [*batch, act("notes", "DELETE", 1, 13)], device="phone")
    assert (more.accepted, more.duplicates) == ([3], [0, 1, 2])


async def test_same_identity_with_other_content_is_a_conflict(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 10, text="a")])
    error = await refused(db, [act("notes", "INSERT", 1, 10, text="changed")])
    assert error.code == "CONFLICT"
    assert error.details["invalidActions"][0]["index"] == 0


async def test_identity_repeated_within_one_batch(db: Database) -> None:
    twice = act("notes", "INSERT", 1, 10, text="a")
    outcome = await write(db, [twice, twice])
    assert (outcome.accepted, outcome.duplicates) == ([0], [1])
    error = await refused(
        db, [act("notes", "INSERT", 2, 10, text="a"), act("notes", "INSERT", 2, 10, text="b")]
    )
    assert error.code == "CONFLICT"


async def test_write_progress_per_table_and_device(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 50, order=2, text="a")], device="phone")
    await write(db, [act("notes", "INSERT", 2, 40, text="a")], device="laptop")  # older time
    await write(db, [act("steps", "INSERT", 3, 60, utcTime=1, value=1.0)], device="laptop")
    every = {m.table: (m.time, m.order) for m in await write_progress(db, ALICE, PROJECT)}
    assert every == {
        "cases": (None, None),
        "moods": (None, None),
        "notes": (50, 2),
        "steps": (60, 0),
    }
    laptop = await write_progress(db, ALICE, PROJECT, device_id="laptop", include_tables=["notes"])
    assert [(m.table, m.time, m.order) for m in laptop] == [("notes", 40, 0)]
    narrowed = await write_progress(db, ALICE, PROJECT, exclude_tables=["notes", "cases"])
    assert [m.table for m in narrowed] == ["moods", "steps"]
    assert [m.time for m in await write_progress(db, BOB, PROJECT)] == [None] * 4


async def test_who_may_write_for_whom(db: Database) -> None:
    note = act("notes", "INSERT", 1, 1, text="from someone else", user="alice")
    assert (await refused(db, [note], principal=BOB, user="alice")).code == "FORBIDDEN"
    assert (await refused(db, [note], principal=CAROL, user="alice")).code == "FORBIDDEN"
    await grant_access(db, ALICE, PROJECT, "dr-carol")
    assert (await write(db, [note], principal=CAROL, user="alice")).accepted == [0]
    admin_note = act("notes", "INSERT", 2, 2, text="admin", user="bob")
    assert (await write(db, [admin_note], principal=ADMIN, user="bob")).accepted == [0]


async def test_unknown_project_is_not_found(db: Database) -> None:
    with pytest.raises(GatewayError) as caught:
        await write_actions(db, ALICE, WriteRequest(project="nope", actions=[]), max_batch=10)
    assert caught.value.code == "NOT_FOUND"
