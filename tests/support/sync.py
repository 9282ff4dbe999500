"""Shared set-up for sync-log tests: a study project, and actions made briefly."""

from __future__ import annotations

import asyncio
import json
import random
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
from gateway.sync.writer import WriteOutcome, WriteRequest, write_actions, write_in_transaction

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
    principal: Principal | None = None,
    device: str | None = None,
    max_batch: int = 10_000,
    **request: Any,
) -> WriteOutcome:
    """``actions`` written; by default for alice by the server side (the admin), so that they
    are not alice's own when she reads without a deviceId (includeOwn, see reader.py)."""
    if principal is None:
        principal = ALICE if device is not None else ADMIN
        if principal is ADMIN:
            request.setdefault("user", "alice")
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
    snapshot: bool = True,
) -> tuple[list[Any], dict[str, str], int]:
    """Read until hasMore is false; returns the actions, the final progress, and the reads.
    ``snapshot=False``: tables without progress replay their log instead of a snapshot."""
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
                snapshot=snapshot,
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


class _Rollback(Exception):
    pass


async def race_writers_and_readers(
    db: Database,
    rng: random.Random,
    *,
    batches: int,
    most_per_batch: int,
    most_per_read: int,
    writers: int = 4,
    readers: int = 3,
) -> None:
    """Writers that commit out of order (a random delay before each commit, a fifth of their
    batches rolled back) and readers paging from their own progress until the writers stop:
    each reader must get exactly the committed actions, each once."""
    committed: set[str] = set()
    writers_done = asyncio.Event()

    async def writer(w: int) -> None:
        for b in range(batches):
            numbers = [w * 100_000 + b * 10 + k + 1 for k in range(rng.randint(1, most_per_batch))]
            actions = [act("notes", "INSERT", n, time=n, text=f"w{w}") for n in numbers]
            try:
                async with db.transaction() as session:
                    await write_in_transaction(
                        session, ALICE, WriteRequest(PROJECT, actions, device_id=f"writer-{w}")
                    )
                    await asyncio.sleep(rng.uniform(0, 0.03))
                    if rng.random() < 0.2:
                        raise _Rollback
            except _Rollback:
                continue
            committed.update(rid(n) for n in numbers)

    async def reader() -> list[str]:
        progress: dict[str, str] = {}
        seen: list[str] = []
        while True:
            last_round = writers_done.is_set()
            batch = await read_actions(
                db,
                ALICE,
                ReadRequest(
                    PROJECT,
                    device_id="reader",
                    progress=progress,
                    filter=ReadFilter(include_tables=["notes"]),
                    max_count=rng.randint(1, most_per_read),
                ),
                max_batch=1000,
            )
            seen += [a.record_id for a in batch.actions]
            progress = {p.table: p.cursor.encode() for p in batch.progress}
            if not batch.has_more:
                if last_round:
                    return seen
                await asyncio.sleep(0.002)

    reading = [asyncio.create_task(reader()) for _ in range(readers)]
    await asyncio.gather(*(writer(w) for w in range(writers)))
    writers_done.set()
    results = await asyncio.gather(*reading)

    assert committed, "the test wrote nothing"
    for seen in results:
        assert len(seen) == len(set(seen)), "an action was delivered twice"
        assert set(seen) == committed, "a committed action was lost (or a rolled back one read)"
