"""Property: a writeActions batch applies whole or changes nothing (domain layer, both databases).

hypothesis writes histories of random batches (valid actions, invalid ones, retried and
re-used identities, stale base versions on a REJECT table) and checks each batch against a
model of the sync log's rules: a batch the model accepts must be accepted with exactly the
records the model expects; a batch the model refuses must be refused with the log, the records
and the write progress exactly as they were. Seeded (``derandomize``): CI sees the same batches
every run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from gateway.db import Database
from gateway.db.models import Action, Project, ProjectTable, Record, WriteProgress
from gateway.errors import GatewayError
from gateway.sync import projects
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.tables import ConflictPolicy, FieldSpec, FieldType, build_table_spec
from gateway.sync.writer import WriteRequest, write_actions
from tests.support.sync import ADMIN, ALICE, rid

TABLES = {
    # last writer wins; without a device nothing is contested
    "steps": build_table_spec(
        "steps",
        (
            FieldSpec("utcTime", FieldType.INT, required=True),
            FieldSpec("value", FieldType.FLOAT, required=True),
        ),
        None,
    ),
    # REJECT: a stale baseVersion refuses the batch
    "notes": build_table_spec(
        "notes",
        (FieldSpec("text", FieldType.STRING, required=True), FieldSpec("extra", FieldType.JSON)),
        None,
    ),
}
RECORDS = 4  # record numbers per table: few, so that batches keep meeting the same records
_projects = itertools.count()


@dataclass
class Model:
    """What the records of one project should be: (table, recordId) -> (live, data, position)."""

    records: dict[tuple[str, str], tuple[bool, dict[str, Any] | None, int]] = field(
        default_factory=dict
    )
    written: dict[tuple[str, str, int, int], tuple[str, Any]] = field(default_factory=dict)
    clock: int = 1_000


@dataclass(frozen=True)
class Planned:
    action: IncomingAction
    valid: bool  # passes the per-action checks


def _data(table: str, draw: Any, *, insert: bool) -> tuple[dict[str, Any], bool]:
    """A jsonData object for ``table`` and whether the checks accept it."""
    if table == "steps":
        data: dict[str, Any] = {"utcTime": draw(st.integers(0, 2**40)), "value": 1.5}
        if not insert:
            data = draw(st.dictionaries(st.sampled_from(["utcTime", "value"]),
                                        st.integers(0, 99), max_size=2))  # fmt: skip
    else:
        text = draw(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8))
        data = {"text": text, "extra": draw(st.none() | st.lists(st.integers(), max_size=3))}
        if not insert:
            data = {k: v for k, v in data.items() if draw(st.booleans())}
    flaw = draw(
        st.sampled_from(["none"] * 40 + ["wrong type", "missing", "unknown field", "NUL", "deep"])
    )
    if flaw == "wrong type":
        data["value" if table == "steps" else "text"] = {"not": "scalar"}
    elif flaw == "missing":
        data.pop("value" if table == "steps" else "text", None)
        return data, not insert
    elif flaw == "unknown field":
        data["nope"] = 1
    elif flaw == "NUL":
        data["value" if table == "steps" else "text"] = "a\x00b"
    elif flaw == "deep":
        nested: Any = 1
        for _ in range(200):
            nested = [nested]
        data["extra"] = nested
    return data, flaw == "none"


@st.composite
def batches(draw: Any, model: Model) -> list[Planned]:
    """Mostly actions that fit the records as they are (so that many batches are accepted),
    some that do not, and some retried or re-used identities."""
    live = {key: state[0] for key, state in model.records.items()}
    planned: list[Planned] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["fresh"] * 12 + ["resend", "reuse identity", "bad table"]))
        if kind in ("resend", "reuse identity") and model.written:
            table, record, time, order = draw(st.sampled_from(sorted(model.written)))
            action, data = model.written[(table, record, time, order)]
            if kind == "reuse identity":  # the same identity with other content: a conflict
                data = {"text": "other"} if table == "notes" else {"value": 2.5}
                action = "UPDATE"
            planned.append(Planned(_action(table, action, record, data, time, order), True))
            continue
        table = "nowhere" if kind == "bad table" else draw(st.sampled_from(sorted(TABLES)))
        record = rid(draw(st.integers(1, RECORDS)))
        exists = live.get((table, record), False)
        fits = draw(st.integers(0, 14)) > 0
        if exists == fits:
            action = draw(st.sampled_from(["UPDATE", "UPDATE", "DELETE"]))
        else:
            action = "INSERT"
        live[(table, record)] = action != "DELETE"
        model.clock += 1
        time, order = model.clock, draw(st.integers(0, 2))
        if action == "DELETE":
            data, valid = None, True
        else:
            data, valid = _data(table, draw, insert=action == "INSERT")
        base = None
        if table == "notes" and draw(st.booleans()):
            current = model.records.get((table, record))
            stale = draw(st.integers(0, 3)) == 0
            if current is not None:
                base = current[2] - 1 if stale else current[2]
        user = "bob" if draw(st.integers(0, 29)) == 0 else "alice"
        planned.append(
            Planned(
                _action(table, action, record, data, time, order, base=base, user=user),
                valid and table != "nowhere" and user == "alice",
            )
        )
    return planned


def _action(
    table: str,
    action: str,
    record: str,
    data: dict[str, Any] | None,
    time: int,
    order: int,
    *,
    base: int | None = None,
    user: str = "alice",
) -> IncomingAction:
    return IncomingAction(
        table=table,
        user=user,
        action=ActionType(action),
        record_id=record,
        json_data=None if data is None else json.dumps(data),
        time=time,
        order=order,
        base_version=base,
    )


def expected(model: Model, batch: list[Planned]) -> dict[tuple[str, str], Any] | None:
    """The records after ``batch`` as the sync log's rules say, or None: refused whole."""
    if not all(p.valid for p in batch):
        return None
    written = dict(model.written)
    new: list[IncomingAction] = []
    for p in batch:  # retried actions are duplicates; an identity re-used is a conflict
        a = p.action
        key = (a.table, a.record_id, a.time, a.order)
        content = (a.action.value, None if a.json_data is None else json.loads(a.json_data))
        if key not in written:
            written[key] = content
            new.append(a)
        elif written[key] != content:
            return None
    records = {k: (live, data) for k, (live, data, _) in model.records.items()}
    touched: set[tuple[str, str]] = set()
    for a in new:
        key = (a.table, a.record_id)
        live, data = records.get(key, (False, None))
        stored = model.records.get(key)
        first = key not in touched
        touched.add(key)
        if (
            first
            and stored is not None
            and a.action is not ActionType.INSERT
            and a.base_version is not None
            and a.base_version != stored[2]
        ):
            if not live and a.action is ActionType.DELETE:
                continue  # deleted twice: nothing to apply, no conflict
            return None  # notes is REJECT
        if (a.action is ActionType.INSERT) == live:
            return None  # inserting what exists, or changing what does not
        change = json.loads(a.json_data) if a.json_data else None
        if a.action is ActionType.INSERT:
            data = change
        elif a.action is ActionType.UPDATE:
            data = (data or {}) | (change or {})
        records[key] = (a.action is not ActionType.DELETE, data)
    return records


async def snapshot(db: Database, project_id: int) -> tuple[list[Any], ...]:
    async with db.session() as session:
        actions = await session.execute(
            select(Action.id, Action.table_id, Action.record_id, Action.time,
                   Action.action_order, Action.action, Action.json_data)
            .where(Action.project_id == project_id).order_by(Action.id)
        )  # fmt: skip
        records = await session.execute(
            select(Record.table_id, Record.record_id, Record.data, Record.deleted,
                   Record.position)
            .where(Record.project_id == project_id).order_by(Record.table_id, Record.record_id)
        )  # fmt: skip
        progress = await session.execute(
            select(WriteProgress.table_id, WriteProgress.time, WriteProgress.action_order)
            .where(WriteProgress.project_id == project_id)
            .order_by(WriteProgress.table_id)
        )  # fmt: skip
        return tuple([tuple(r) for r in rows] for rows in (actions, records, progress))


async def stored_records(db: Database, project_id: int) -> dict[tuple[str, str], Any]:
    async with db.session() as session:
        named = select(ProjectTable.id, ProjectTable.name).where(
            ProjectTable.project_id == project_id
        )
        tables = {table_id: name for table_id, name in await session.execute(named)}
        rows = await session.scalars(select(Record).where(Record.project_id == project_id))
        return {(tables[r.table_id], r.record_id): (r, r.position) for r in rows}


EXAMPLES = 60  # histories of 1 to 5 batches, per database


def test_a_batch_applies_whole_or_changes_nothing(migrated_url: str) -> None:
    outcomes: Counter[str] = Counter()
    with asyncio.Runner() as runner:
        db = Database(migrated_url)

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def histories(data: st.DataObject) -> None:
            runner.run(_history(db, data, outcomes))

        try:
            histories()
        finally:
            runner.run(db.dispose())
    # Not vacuous: both kinds of batch were written, and refused for several reasons.
    assert outcomes["accepted"] >= 25, outcomes
    assert sum(n for k, n in outcomes.items() if k != "accepted") >= 25, outcomes
    assert {"VALIDATION_FAILED", "CONFLICT", "TABLE_NOT_ALLOWED"} <= set(outcomes), outcomes


async def _history(db: Database, data: st.DataObject, outcomes: Counter[str]) -> None:
    code = f"p{next(_projects)}"  # a project per history: each starts empty
    await projects.create_project(db, ADMIN, code, code)
    await projects.add_member(db, ADMIN, code, "alice")
    for spec in TABLES.values():
        await projects.define_table(db, ADMIN, code, spec)
    await projects.set_conflict_policy(db, ADMIN, code, "notes", ConflictPolicy.REJECT)
    async with db.session() as session:
        project_id = await session.scalar(select(Project.id).where(Project.code == code))
    assert project_id is not None
    model = Model()
    for _ in range(data.draw(st.integers(1, 5), label="batches")):
        batch = data.draw(batches(model), label="batch")
        want = expected(model, batch)
        before = await snapshot(db, project_id)
        request = WriteRequest(project=code, actions=[p.action for p in batch])
        try:
            outcome = await write_actions(db, ALICE, request, max_batch=100)
        except GatewayError as refused:
            outcomes[refused.code] += 1
            assert await snapshot(db, project_id) == before, f"{refused.code} left changes"
            assert want is None, f"refused ({refused.code}: {refused}), the rules accept it"
            continue
        outcomes["accepted"] += 1
        assert want is not None, f"accepted {outcome}, the rules refuse it"
        assert len((await snapshot(db, project_id))[0]) == len(before[0]) + len(outcome.accepted)
        stored = await stored_records(db, project_id)
        got = {k: (not r.deleted, r.data) for k, (r, _) in stored.items()}
        assert got == {k: v for k, v in want.items() if k in got or v[0]}
        for p in batch:  # the model follows the log
            a = p.action
            content = (a.action.value, None if a.json_data is None else json.loads(a.json_data))
            model.written.setdefault((a.table, a.record_id, a.time, a.order), content)
        model.records = {k: (not r.deleted, r.data, pos) for k, (r, pos) in stored.items()}
