"""Shared set-up for sync-log tests: a study project, and actions made briefly."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.live.hub import Hub
from gateway.sync import projects
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.events import NoEvents
from gateway.sync.reader import ReadFilter, ReadRequest, read_actions
from gateway.sync.runs import RunInfo
from gateway.sync.tables import FieldSpec, FieldType, build_table_spec
from gateway.sync.writer import WriteOutcome, WriteRequest, write_actions

ADMIN = Principal("root", Role.ADMIN)
ALICE = Principal("alice", Role.PATIENT)
BOB = Principal("bob", Role.PATIENT)
CAROL = Principal("dr-carol", Role.PROFESSIONAL)
PROJECT = "study"

TABLES = (
    # utcTime: sampleTime is utcTime
    build_table_spec(
        "steps",
        (
            FieldSpec("utcTime", FieldType.INT, required=True),
            FieldSpec("value", FieldType.FLOAT, required=True),
            FieldSpec("note", FieldType.STRING),
        ),
        None,
    ),
    # localTime only: sampleTime is localTime read as UTC
    build_table_spec(
        "moods",
        (
            FieldSpec("localTime", FieldType.DATETIME, required=True),
            FieldSpec("score", FieldType.INT),
        ),
        None,
    ),
    # no time fields: no sampleTime, time ranges ignored
    build_table_spec(
        "notes",
        (
            FieldSpec("text", FieldType.STRING, required=True),
            FieldSpec("done", FieldType.BOOLEAN),
            FieldSpec("extra", FieldType.JSON),
        ),
        None,
    ),
    build_table_spec(
        "cases",
        (FieldSpec("caseKey", FieldType.STRING, required=True), FieldSpec("age", FieldType.INT)),
        "caseKey",
    ),
)


MEMBERS = ("alice", "bob", "dr-carol")


async def make_study(db: Database) -> None:
    """The study project, closed like every project by default, with alice, bob and dr-carol
    as its members."""
    await projects.create_project(db, ADMIN, PROJECT, "Study")
    for member in MEMBERS:
        await projects.add_member(db, ADMIN, PROJECT, member)
    for spec in TABLES:
        await projects.define_table(db, ADMIN, PROJECT, spec)


def rid(n: int) -> str:
    return f"{n:032x}"


def act(
    table: str,
    kind: str,
    n: int,
    time: int,
    order: int = 0,
    user: str = "alice",
    **fields: Any,
) -> IncomingAction:
    kind_ = ActionType(kind)
    data = None if kind_ is ActionType.DELETE else json.dumps(fields)
    return IncomingAction(
        table=table,
        user=user,
        action=kind_,
        record_id=rid(n),
        json_data=data,
        time=time,
        order=order,
    )


async def write(
    db: Database,
    actions: list[IncomingAction],
    principal: Principal = ALICE,
    device: str | None = None,
    max_batch: int = 10_000,
    **request: Any,
) -> WriteOutcome:
    return await write_actions(
        db,
        principal,
        WriteRequest(project=PROJECT, actions=actions, device_id=device, **request),
        max_batch=max_batch,
    )


async def read_all(
    db: Database,
    principal: Principal = ALICE,
    *,
    device: str | None = None,
    batch: int = 0,
    filter: ReadFilter | None = None,
    progress: dict[str, str] | None = None,
    max_time: int | None = None,
    user: str | None = None,
    max_batch: int = 10_000,
) -> tuple[list[Any], dict[str, str], int]:
    """Read until hasMore is false; returns the actions, the final progress, and the reads."""
    progress = dict(progress or {})
    actions: list[Any] = []
    reads = 0
    while True:
        result = await read_actions(
            db,
            principal,
            ReadRequest(
                project=PROJECT,
                user=user,
                device_id=device,
                progress=progress,
                filter=filter or ReadFilter(),
                max_count=batch,
                max_time=max_time,
            ),
            max_batch=max_batch,
        )
        reads += 1
        actions += result.actions
        progress = {p.table: p.cursor.encode() for p in result.progress}
        if not result.has_more:
            return actions, progress, reads


@dataclass
class RecordedEvents(NoEvents):
    """Events that keep what was announced, for domain tests (``hub``: also wake it, as the
    gateway's own announcer does on one replica)."""

    hub: Hub | None = None
    written: list[tuple[int, str, frozenset[int], str | None]] = field(default_factory=list)
    runs: list[RunInfo] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    access: list[int] = field(default_factory=list)

    async def actions_written(
        self, project_id: int, user: str, table_ids: Collection[int], device_id: str | None
    ) -> None:
        self.written.append((project_id, user, frozenset(table_ids), device_id))
        if self.hub is not None:
            self.hub.wake(project_id, user, table_ids)

    async def runs_changed(self, runs: Sequence[RunInfo]) -> None:
        self.runs.extend(runs)

    async def status_changed(self, project: str) -> None:
        self.statuses.append(project)

    async def access_changed(self, project_id: int) -> None:
        self.access.append(project_id)
