"""A demo project so a newcomer sees something real in GraphiQL. Loading it twice is harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.auth.principal import Principal, Role
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.sync import grants, projects, runs
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.reader import ReadRequest, read_actions
from gateway.sync.tables import FieldSpec, FieldType, build_table_spec
from gateway.sync.writer import WriteRequest, write_actions

DEMO_PROJECT = "demo"
DEMO_ADMIN = Principal("admin", Role.ADMIN)
DEMO_USERS = (
    DEMO_ADMIN,
    Principal("alice", Role.PATIENT),
    Principal("bob", Role.PATIENT),
    Principal("dr-carol", Role.PROFESSIONAL),
)

DEMO_TABLES = (
    build_table_spec(
        "steps",
        (
            FieldSpec("utcTime", FieldType.INT, required=True),
            FieldSpec("localTime", FieldType.DATETIME),
            FieldSpec("timezone", FieldType.STRING),
            FieldSpec("value", FieldType.FLOAT, required=True),
        ),
        key_field=None,
    ),
    build_table_spec(
        "patients",
        (
            FieldSpec("caseKey", FieldType.STRING, required=True),
            FieldSpec("name", FieldType.STRING, required=True),
            FieldSpec("birthDate", FieldType.DATETIME),
            FieldSpec("enrolled", FieldType.BOOLEAN),
            FieldSpec("answers", FieldType.JSON),
        ),
        key_field="caseKey",
    ),
    build_table_spec(
        "notes",
        (
            FieldSpec("text", FieldType.STRING, required=True),
            FieldSpec("mood", FieldType.INT),
        ),
        key_field=None,
    ),
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    project: str
    tables: tuple[str, ...]
    users: tuple[Principal, ...]


async def load_demo(db: Database) -> DemoSummary:
    registry = UserRegistry(db)
    for user in DEMO_USERS:
        await registry.remember(user)
    existing = await projects.find_project(db, DEMO_ADMIN, DEMO_PROJECT)
    if existing is None:
        await projects.create_project(db, DEMO_ADMIN, DEMO_PROJECT, "Demo: steps, patients, notes")
        declared: set[str] = set()
    else:
        declared = {t.spec.name for t in existing.tables}
    for spec in DEMO_TABLES:
        if spec.name not in declared:
            await projects.define_table(db, DEMO_ADMIN, DEMO_PROJECT, spec)
    # A closed project: its patients and their doctor are members (admins reach it anyway).
    for member in DEMO_USERS[1:]:
        await projects.add_member(db, DEMO_ADMIN, DEMO_PROJECT, member.user_id)
    # alice lets her doctor see her data; bob does not.
    await grants.grant_access(db, DEMO_ADMIN, DEMO_PROJECT, "dr-carol", user="alice")
    # Written with fixed identities, so loading again finds them as duplicates.
    for user, device, actions in _demo_actions():
        await _write(db, user, device, actions)
    await _conflicting_edits(db)
    await _export_job(db)
    return DemoSummary(
        project=DEMO_PROJECT, tables=tuple(t.name for t in DEMO_TABLES), users=DEMO_USERS
    )


async def _write(db: Database, user: str, device: str, actions: list[IncomingAction]) -> None:
    request = WriteRequest(project=DEMO_PROJECT, actions=actions, user=user, device_id=device)
    await write_actions(db, DEMO_ADMIN, request, max_batch=len(actions))


async def _conflicting_edits(db: Database) -> None:
    """alice's phone has her notes; her laptop edits one, then the phone edits it too, earlier
    but unaware: a CONCURRENT_UPDATE that the laptop's later edit wins."""
    await read_actions(
        db,
        DEMO_ADMIN,
        ReadRequest(project=DEMO_PROJECT, user="alice", device_id="alice-phone"),
        max_batch=1_000,
    )
    edit = ActionType.UPDATE
    laptop = _action("alice", "notes", edit, 200, _START_MS + 70, {"text": "Felt great!"})
    phone = _action("alice", "notes", edit, 200, _START_MS + 60, {"text": "Felt good"})
    await _write(db, "alice", "alice-laptop", [laptop])
    await _write(db, "alice", "alice-phone", [phone])


async def _export_job(db: Database) -> None:
    """An external job's sync with Census-like runs: one completed, one failed."""
    if any(s.name == "nightly-export" for s in await runs.list_syncs(db, DEMO_ADMIN, DEMO_PROJECT)):
        return
    sync = await runs.create_sync(
        db,
        DEMO_ADMIN,
        DEMO_PROJECT,
        "nightly-export",
        direction=runs.ExchangeDirection.GET,
        include_tables=["steps"],
        user="alice",
    )
    trigger = runs.TriggerReason("Schedule", "Nightly export to the research warehouse")
    done = await runs.start_sync_run(db, DEMO_ADMIN, sync.id, full_sync=True, trigger=trigger)
    await runs.complete_sync_run(
        db,
        DEMO_ADMIN,
        done.id,
        runs.Counters(
            source_record_count=7,
            source_record_updates=7,
            source_record_deletes=0,
            records_processed=7,
            records_updated=7,
            records_failed=0,
            source_record_invalids=0,
            records_invalid=0,
        ),
    )
    failed = await runs.start_sync_run(db, DEMO_ADMIN, sync.id, trigger=trigger)
    await runs.update_sync_run(
        db, DEMO_ADMIN, failed.id, runs.Counters(source_record_count=7), "Loading"
    )
    await runs.fail_sync_run(
        db,
        DEMO_ADMIN,
        failed.id,
        "WAREHOUSE_UNAVAILABLE",
        "The warehouse refused the connection",
        "connect timeout after 30 s",
    )


_DAY_MS = 86_400_000
_START_MS = 1_763_769_600_000  # 2025-11-22T00:00:00Z


def _action(
    user: str, table: str, kind: ActionType, n: int, time: int, data: dict[str, object] | None
) -> IncomingAction:
    return IncomingAction(
        table=table,
        user=user,
        action=kind,
        record_id=f"{n:032x}",
        json_data=None if data is None else json.dumps(data),
        time=time,
        order=0,
    )


def _demo_actions() -> list[tuple[str, str, list[IncomingAction]]]:
    """A week of alice's steps from her phone, notes from her laptop, and a case of bob's."""
    steps = [
        _action(
            "alice",
            "steps",
            ActionType.INSERT,
            100 + day,
            _START_MS + day * _DAY_MS + 3_600_000,
            {
                "utcTime": _START_MS + day * _DAY_MS,
                "localTime": f"2025-11-{22 + day:02d}T09:00:00.000",
                "timezone": "Europe/Amsterdam",
                "value": float(4000 + 750 * day),
            },
        )
        for day in range(7)
    ]
    notes = [
        _action("alice", "notes", ActionType.INSERT, 200, _START_MS + 10, {"text": "Felt great"}),
        _action("alice", "notes", ActionType.UPDATE, 200, _START_MS + 20, {"mood": 5}),
        _action("alice", "notes", ActionType.INSERT, 201, _START_MS + 30, {"text": "Typo"}),
        _action("alice", "notes", ActionType.DELETE, 201, _START_MS + 40, None),
    ]
    cases = [
        _action(
            "bob",
            "patients",
            ActionType.INSERT,
            300,
            _START_MS + 50,
            {"caseKey": "4480489263555", "name": "Bob", "enrolled": True, "answers": {"q1": "yes"}},
        )
    ]
    return [
        ("alice", "alice-phone", steps),
        ("alice", "alice-laptop", notes),
        ("bob", "bob-tablet", cases),
    ]
