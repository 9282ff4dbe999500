"""A demo project so a newcomer sees something real in GraphiQL. Loading it twice is harmless."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.principal import Principal, Role
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.sync import grants, projects
from gateway.sync.tables import FieldSpec, FieldType, build_table_spec

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
    return DemoSummary(
        project=DEMO_PROJECT, tables=tuple(t.name for t in DEMO_TABLES), users=DEMO_USERS
    )
