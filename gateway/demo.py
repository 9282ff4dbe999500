"""A demo project so a newcomer sees something real in GraphiQL. Loading it twice is harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.auth.principal import Principal, Role
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.sync import grants, projects
from gateway.sync.actions import ActionType, IncomingAction
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
    existing = await projects.find_project(db, DEMO_PROJECT)
    if existing is None:
        await projects.create_project(db, DEMO_ADMIN, DEMO_PROJECT, "Demo: steps, patients, notes")
        declared: set[str] = set()
    else:
        declared = {t.spec.name for t in existing.tables}
    for spec in DEMO_TABLES:
        if spec.name not in declared:
            await projects.define_table(db, DEMO_ADMIN, DEMO_PROJECT, spec)
    # alice lets her doctor see her data; bob does not.
    await grants.grant_access(db, DEMO_ADMIN, DEMO_PROJECT, "dr-carol", user="alice")
    # Written with fixed identities, so loading again finds them as duplicates.
    for user, device, actions in _demo_actions():
        await write_actions(
            db,
            DEMO_ADMIN,
            WriteRequest(project=DEMO_PROJECT, actions=actions, user=user, device_id=device),
            max_batch=len(actions),
        )
    return DemoSummary(
        project=DEMO_PROJECT, tables=tuple(t.name for t in DEMO_TABLES), users=DEMO_USERS
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
            "alice", "steps", ActionType.INSERT, 100 + day,
            _START_MS + day * _DAY_MS + 3_600_000,
            {
                "utcTime": _START_MS + day * _DAY_MS,
                "localTime": f"2025-11-{22 + day:02d}T09:00:00.000",
                "timezone": "Europe/Amsterdam",
                "value": float(4000 + 750 * day),
            },
        )
        for day in range(7)
    ]  # fmt: skip
    notes = [
        _action("alice", "notes", ActionType.INSERT, 200, _START_MS + 10, {"text": "Felt great"}),
        _action("alice", "notes", ActionType.UPDATE, 200, _START_MS + 20, {"mood": 5}),
        _action("alice", "notes", ActionType.INSERT, 201, _START_MS + 30, {"text": "Typo"}),
        _action("alice", "notes", ActionType.DELETE, 201, _START_MS + 40, None),
    ]
    cases = [
        _action(
            "bob", "patients", ActionType.INSERT, 300, _START_MS + 50,
            {"caseKey": "4480489263555", "name": "Bob", "enrolled": True, "answers": {"q1": "yes"}},
        )
    ]  # fmt: skip
    return [
        ("alice", "alice-phone", steps),
        ("alice", "alice-laptop", notes),
        ("bob", "bob-tablet", cases),
    ]
