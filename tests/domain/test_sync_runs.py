"""Sync runs in the domain: timeouts on a controlled clock, queued runs, concurrent transitions,
device syncs, pagination math. The GraphQL contract is in test_sync_runs_api.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.models import Sync
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, Conflict, Forbidden, NotFound
from gateway.sync import projects
from gateway.sync import runs as domain
from gateway.sync.grants import grant_access
from gateway.sync.runs import Counters, RunInfo, SyncRunStatus, TriggerReason
from gateway.sync.runs.paging import Pagination, paginate, requested_page
from gateway.sync.tables import FieldSpec, FieldType, build_table_spec

ADMIN = Principal("root", Role.ADMIN)
ALICE = Principal("alice", Role.PATIENT)
BOB = Principal("bob", Role.PATIENT)
CAROL = Principal("dr-carol", Role.PROFESSIONAL)
MANUAL = TriggerReason("Manual", "by a test")
HOUR = timedelta(hours=1)


@pytest.fixture
async def sync_id(db: Database) -> int:
    """An external job's sync of alice's data in project "study"."""
    await projects.create_project(db, ADMIN, "study", "Study")
    for member in ("alice", "bob", "dr-carol"):
        await projects.add_member(db, ADMIN, "study", member)
    notes = build_table_spec("notes", (FieldSpec("text", FieldType.STRING),), None)
    await projects.define_table(db, ADMIN, "study", notes)
    return (await domain.create_sync(db, ALICE, "study", "export", include_tables=["notes"])).id


async def in_transaction(db: Database, step: Callable[[Any], Awaitable[Any]]) -> Any:
    async with db.transaction() as session:
        return await step(session)


async def start(db: Database, sync_id: int, **options: Any) -> RunInfo:
    async def step(session: Any) -> RunInfo:
        sync = await session.get(Sync, sync_id)
        return await domain.start_run(session, sync, trigger=MANUAL, **options)

    return await in_transaction(db, step)


async def test_a_run_that_stops_reporting_times_out(db: Database, sync_id: int) -> None:
    stale = await start(db, sync_id)
    queued = await start(db, sync_id, scheduled_execution_time=stale.updated_at + 10 * HOUR)
    just_before = stale.updated_at + HOUR - timedelta(seconds=1)
    assert (
        await in_transaction(db, lambda s: domain.fail_timed_out_runs(s, just_before, 3600)) == []
    )

    later = stale.updated_at + HOUR + timedelta(seconds=1)
    failed = await in_transaction(db, lambda s: domain.fail_timed_out_runs(s, later, 3600))
    assert [(r.id, r.status, r.error_code, r.completed_at) for r in failed] == [
        (stale.id, SyncRunStatus.FAILED, "RUN_TIMEOUT", later)
    ]
    assert failed[0].error_message == "No update for 3600 seconds: the gateway failed the run."
    # a second sweep (another replica) finds nothing; the queued run is not timed out
    assert await in_transaction(db, lambda s: domain.fail_timed_out_runs(s, later, 3600)) == []
    assert (await domain.get_run(db, ALICE, queued.id)).status is SyncRunStatus.QUEUED


async def test_an_update_keeps_a_run_alive(db: Database, sync_id: int) -> None:
    run = await start(db, sync_id)
    touched = run.updated_at + timedelta(minutes=50)
    await in_transaction(db, lambda s: domain.update_run(s, run.id, now=touched))
    at = run.updated_at + HOUR + timedelta(seconds=1)  # an hour after the start, not the update
    assert await in_transaction(db, lambda s: domain.fail_timed_out_runs(s, at, 3600)) == []
    assert (await domain.sweep_runs(db, 3600, now=touched + HOUR + timedelta(seconds=1)))[
        0
    ].error_code == "RUN_TIMEOUT"


async def test_queued_runs_start_when_their_time_comes(db: Database, sync_id: int) -> None:
    first = await start(db, sync_id, scheduled_execution_time=utcnow() + HOUR)
    second = await start(db, sync_id, scheduled_execution_time=first.scheduled_execution_time)
    assert (first.status, second.status) == (SyncRunStatus.QUEUED, SyncRunStatus.QUEUED)
    assert first.scheduled_execution_time is not None
    with pytest.raises(Conflict, match="is QUEUED until"):  # too early to report on it
        await domain.update_sync_run(db, ALICE, first.id, Counters(records_processed=1))
    assert await in_transaction(db, lambda s: domain.start_due_runs(s, utcnow())) == []

    due = first.scheduled_execution_time + timedelta(seconds=1)
    started = await in_transaction(db, lambda s: domain.start_due_runs(s, due))
    # the earlier one works, so the other one of the same sync is skipped
    assert [(r.id, r.status, r.completed_at) for r in started] == [
        (first.id, SyncRunStatus.WORKING, None),
        (second.id, SyncRunStatus.SKIPPED, due),
    ]


async def test_a_queued_run_touched_after_its_time_starts(db: Database, sync_id: int) -> None:
    queued = await start(db, sync_id, scheduled_execution_time=utcnow() + HOUR)
    later = utcnow() + 2 * HOUR
    counters = Counters(source_record_count=3)
    run = await in_transaction(db, lambda s: domain.update_run(s, queued.id, counters, now=later))
    assert (run.status, run.counters["source_record_count"]) == (SyncRunStatus.WORKING, 3)


async def test_concurrent_transitions_apply_once(db: Database, sync_id: int) -> None:
    run = await start(db, sync_id)
    outcomes = await asyncio.gather(
        domain.complete_sync_run(db, ALICE, run.id, Counters(records_processed=9)),
        domain.fail_sync_run(db, ALICE, run.id, "BOOM"),
        domain.cancel_sync_run(db, ALICE, run.id),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, RunInfo)]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, Conflict) for o in outcomes if o not in won)
    assert await domain.get_run(db, ALICE, run.id) == won[0]


async def test_concurrent_starts_leave_one_working(db: Database, sync_id: int) -> None:
    started = await asyncio.gather(*(start(db, sync_id) for _ in range(4)))
    statuses = sorted(r.status.value for r in started)
    assert statuses == ["SKIPPED", "SKIPPED", "SKIPPED", "WORKING"]
    # a run the gateway runs beside another (a write during a live read) is never skipped
    beside = await start(db, sync_id, concurrent=True)
    assert beside.status is SyncRunStatus.WORKING


async def test_concurrent_additions_all_count(db: Database, sync_id: int) -> None:
    run = await start(db, sync_id)
    add = Counters(records_processed=2, records_updated=1)
    await asyncio.gather(
        *(
            in_transaction(db, lambda s: domain.update_run(s, run.id, add, add=True))
            for _ in range(5)
        )
    )
    counters = (await domain.get_run(db, ALICE, run.id)).counters
    assert (counters["records_processed"], counters["records_updated"]) == (10, 5)


async def test_negative_counters_are_refused(db: Database, sync_id: int) -> None:
    run = await start(db, sync_id)
    with pytest.raises(BadUserInput, match=r"counters\.recordsFailed cannot be negative"):
        await domain.update_sync_run(db, ALICE, run.id, Counters(records_failed=-1))
    assert await domain.get_run(db, ALICE, run.id) == run


async def test_a_device_gets_one_sync_on_first_use(db: Database, sync_id: int) -> None:
    async def first_use(session: Any) -> int:
        return (await domain.device_sync(session, 1, "phone", "alice")).id

    ids = await asyncio.gather(*(in_transaction(db, first_use) for _ in range(3)))
    assert len(set(ids)) == 1
    async with db.session() as session:
        count = select(func.count()).select_from(Sync).where(Sync.device_id == "phone")
        assert await session.scalar(count) == 1
    sync = await domain.get_sync(db, ALICE, ids[0])
    assert (sync.name, sync.device_id, sync.owner, sync.direction.value) == (
        "phone", "phone", "alice", "BOTH",
    )  # fmt: skip
    with pytest.raises(Conflict, match="already has a sync"):
        await domain.create_sync(db, ALICE, "study", "phone again", device_id="phone")


async def test_who_sees_and_who_manages(db: Database, sync_id: int) -> None:
    run = await domain.start_sync_run(db, ALICE, sync_id)
    assert run.trigger == TriggerReason("API", "Started by alice")
    with pytest.raises(NotFound):  # bob may not even know it exists
        await domain.get_run(db, BOB, run.id)
    with pytest.raises(NotFound):
        await domain.complete_sync_run(db, BOB, run.id)
    with pytest.raises(NotFound):
        await domain.list_runs(db, CAROL, sync_id)
    await grant_access(db, ALICE, "study", "dr-carol")
    assert (await domain.list_runs(db, CAROL, sync_id)).runs == [run]
    with pytest.raises(Forbidden):  # seeing is not managing
        await domain.complete_sync_run(db, CAROL, run.id)
    with pytest.raises(Forbidden):
        await domain.create_sync(db, CAROL, "study", "for alice", user="alice")
    assert (await domain.complete_sync_run(db, ADMIN, run.id)).status is SyncRunStatus.COMPLETED


@pytest.mark.parametrize(
    ("page", "total", "expected"),
    [
        (1, 14, Pagination(14, 5, None, 1, 2, 3)),
        (2, 14, Pagination(14, 5, 1, 2, 3, 3)),
        (3, 14, Pagination(14, 5, 2, 3, None, 3)),
        (4, 14, Pagination(14, 5, 3, 4, None, 3)),  # past the last: back to the last
        (9, 14, Pagination(14, 5, 3, 9, None, 3)),
        (1, 15, Pagination(15, 5, None, 1, 2, 3)),
        (1, 16, Pagination(16, 5, None, 1, 2, 4)),
        (1, 0, Pagination(0, 5, None, 1, None, 1)),  # no records: one empty page
        (2, 0, Pagination(0, 5, 1, 2, None, 1)),
    ],
)
def test_pagination(page: int, total: int, expected: Pagination) -> None:
    assert paginate(page, 5, total) == expected


def test_requested_page() -> None:
    assert requested_page(0, 25) == (1, 25)
    assert requested_page(3, 100) == (3, 100)
    for page, per_page, field in ((-1, 25, "page"), (1, 101, "perPage"), (1, 0, "perPage")):
        with pytest.raises(BadUserInput) as refused:
            requested_page(page, per_page)
        assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": field}


async def test_finished_runs_are_pruned_after_their_retention(db: Database, sync_id: int) -> None:
    old = await start(db, sync_id, concurrent=True)
    recent = await start(db, sync_id, concurrent=True)
    working = await start(db, sync_id, concurrent=True)
    now = old.created_at + timedelta(days=40)
    await in_transaction(db, lambda s: domain.complete_run(s, old.id, now=now - timedelta(days=31)))
    await in_transaction(
        db, lambda s: domain.complete_run(s, recent.id, now=now - timedelta(days=29))
    )
    pruned = await domain.prune_finished_runs(db, now, 30)
    assert pruned == 1
    left = await domain.list_runs(db, ALICE, sync_id)
    assert sorted(r.id for r in left.runs) == [recent.id, working.id]  # a WORKING run stays


async def test_a_run_looked_up_by_id_is_the_run_as_written(db: Database, sync_id: int) -> None:
    """``get_run`` reads on the driver's connection on PostgreSQL (gateway/db/lookup.py): every
    column comes back as the session's own reads give it (times with their zone, counters,
    nulls), and the access rule still asks for a grant when a professional looks."""
    scheduled = utcnow() + HOUR
    queued = await start(db, sync_id, scheduled_execution_time=scheduled)
    assert await domain.get_run(db, ALICE, queued.id) == queued
    run = await domain.start_sync_run(db, ALICE, sync_id, full_sync=True)
    done = await domain.complete_sync_run(
        db, ALICE, run.id, Counters(records_processed=3, records_updated=2),
        error_code="PARTIAL", error_message="two of three", error_detail='{"skipped": 1}',
    )  # fmt: skip
    found = await domain.get_run(db, ALICE, run.id)
    assert found == done
    assert found.completed_at is not None and found.completed_at.tzinfo is not None
    assert (found.error_code, found.error_detail, found.full_sync) == (
        "PARTIAL", '{"skipped": 1}', True,
    )  # fmt: skip
    with pytest.raises(NotFound):
        await domain.get_run(db, CAROL, run.id)
    await grant_access(db, ALICE, "study", "dr-carol")
    assert await domain.get_run(db, CAROL, run.id) == done
    with pytest.raises(NotFound):
        await domain.get_run(db, ALICE, run.id + 1_000)
