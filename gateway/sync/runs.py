"""Syncs and their runs (Census's sync runs): lifecycle, timeouts, listing.

A sync is a named exchange between a project and one device (at most one per device, created on
its first use by ``device_sync``) or one external job. Its owner is the user whose data it syncs.

A run's life::

    startSyncRun ─┬─ scheduled later ─> QUEUED ── its time comes ──┬─> WORKING
                  ├─ a run of the sync is WORKING ─> SKIPPED <─────┘ (one was WORKING then)
                  └─ otherwise ─> WORKING ─┬─ completeSyncRun ─> COMPLETED
                                           ├─ failSyncRun, cancelSyncRun, timeout ─> FAILED
                                           └─ updateSyncRun ─> WORKING (counters, step)

A QUEUED run starts when the sweeper finds its ``scheduledExecutionTime`` passed, or as soon as
an update or completion touches it after that time. Failing and canceling also apply to a
QUEUED run; a canceled run is FAILED with ``canceled`` set. COMPLETED, FAILED and SKIPPED are
final. Every transition is one conditional UPDATE (``WHERE status IN (...)``): of two
concurrent transitions only one applies, the other is a ``CONFLICT`` that changed nothing.
Starting a run locks its sync's row, so two concurrent starts cannot both be WORKING.

Role rules (decided in ``gateway/auth/access.py``): admins see and manage everything; other
users see the syncs of the users whose data they may see (a patient their own, a professional
also those of users who granted them access) and manage only their own. A sync or run you may
not see is ``NOT_FOUND``, like one that does not exist, so ids reveal nothing; one you may see
but not manage is ``FORBIDDEN``.

The ``session`` functions (``device_sync``, ``start_run``, ``record_run``, ``update_run``,
``complete_run``, ``fail_run``, ``cancel_run``) run inside the caller's write transaction
(``Database.transaction``) and check no roles; the caller announces the returned runs after
its commit (``Events.runs_changed``).

The gateway records the runs of a device's own sync itself (``gateway/sync/exchange.py``): each
write and each read is one finished run (``record_run``), a live subscription one run that works
while it streams. A device's sync is the sync of (project, owner, deviceId).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import (
    authorize_user_data,
    may_see_user,
    require_manage,
    target_user,
    visible_users,
)
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values, insert
from gateway.db.models import Project, Sync, SyncRun
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.sync.events import NO_EVENTS, Events
from gateway.sync.projects import load_catalog, require_project
from gateway.sync.run_paging import Pagination, SortOrder, paginate, requested_page

MAX_NAME = 255
MAX_TAG, MAX_STEP, MAX_ERROR_CODE = 100, 200, 100
TIMEOUT_CODE = "RUN_TIMEOUT"
CANCELED_CODE = "CANCELED"
SWEEP_BATCH = 500  # runs one sweep changes at most; the next sweep takes the rest


class SyncRunStatus(StrEnum):
    QUEUED = "QUEUED"  # scheduled for later
    WORKING = "WORKING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # an earlier run of the sync was still working


ACTIVE = (SyncRunStatus.QUEUED, SyncRunStatus.WORKING)


class ExchangeDirection(StrEnum):
    PUT = "PUT"  # from the device or job into the project
    GET = "GET"  # from the project to the device or job
    BOTH = "BOTH"


@dataclass(frozen=True, slots=True)
class Counters:
    """Census's counters; None leaves a counter as it is."""

    source_record_count: int | None = None
    records_failed: int | None = None
    source_record_updates: int | None = None
    source_record_deletes: int | None = None
    source_record_invalids: int | None = None
    records_invalid: int | None = None
    records_processed: int | None = None
    records_updated: int | None = None

    def given(self) -> dict[str, int]:
        """The counters given, checked: none may be negative."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        given = {name: value for name, value in values.items() if value is not None}
        for name, value in given.items():
            if value < 0:
                field = "counters." + _camel(name)
                raise BadUserInput(f"{field} cannot be negative", field=field)
        return given


COUNTER_NAMES = tuple(f.name for f in fields(Counters))


@dataclass(frozen=True, slots=True)
class TriggerReason:
    ui_tag: str  # short, e.g. "Manual", "API", "Device"
    ui_detail: str | None = None  # e.g. who triggered it


def device_trigger(what: str, device_id: str, username: str, user: str) -> TriggerReason:
    """Why the gateway recorded a run of a device's sync: what the device did, who for whom."""
    return TriggerReason("Device", f"{what} from device {device_id} by {username} for {user}")


@dataclass(frozen=True, slots=True)
class SyncInfo:
    id: int
    project: str
    name: str
    device_id: str | None
    direction: ExchangeDirection
    include_tables: list[str] | None
    exclude_tables: list[str] | None
    owner: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    sync_id: int
    project_id: int
    owner: str  # the sync's owner, for role filtering
    status: SyncRunStatus
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    scheduled_execution_time: datetime | None
    error_code: str | None
    error_message: str | None
    error_detail: str | None
    counters: dict[str, int]  # every counter, by its name in COUNTER_NAMES
    full_sync: bool
    trigger: TriggerReason
    canceled: bool
    current_step: str | None


@dataclass(frozen=True, slots=True)
class RunPage:
    pagination: Pagination
    runs: list[RunInfo]


# ---- syncs


async def create_sync(
    db: Database,
    principal: Principal,
    project: str,
    name: str,
    *,
    device_id: str | None = None,
    direction: ExchangeDirection = ExchangeDirection.BOTH,
    include_tables: Sequence[str] | None = None,
    exclude_tables: Sequence[str] | None = None,
    user: str | None = None,
) -> SyncInfo:
    """A sync for an external job (no ``device_id``) or for one of ``user``'s devices (at most
    one each: a device's sync is otherwise created on its first exchange). ``user``: whose
    data, omitted the caller's; only admins create syncs of other users' data."""
    name = _text("name", name, MAX_NAME)
    if device_id is not None:
        _text("deviceId", device_id, MAX_NAME)
    owner = target_user(principal, user)
    require_manage(principal, owner)
    try:
        async with db.transaction() as session:
            found, tables = await load_catalog(session, project)
            await authorize_user_data(session, principal, found, owner)
            _check_tables(project, tables.keys(), include_tables, exclude_tables)
            if device_id is not None:
                await _check_device_free(session, found.id, owner, device_id)  # type: ignore[arg-type]
            sync = Sync(
                project_id=found.id, name=name, device_id=device_id, direction=direction.value,
                include_tables=list(include_tables) if include_tables else None,
                exclude_tables=list(exclude_tables) if exclude_tables else None,
                owner_id=owner, created_by=principal.user_id,
            )  # fmt: skip
            session.add(sync)
            await session.flush()
            return _sync(sync, project)
    except IntegrityError as exc:  # a concurrent first use of the device created its sync
        raise Conflict(f"device {device_id!r} already has a sync", field="deviceId") from exc


async def device_sync(session: AsyncSession, project_id: int, device_id: str, owner: str) -> Sync:
    """The sync of ``owner``'s device, created on first use (named after the device, both
    directions). One SELECT once it exists (every write and read of a device asks); race-safe
    on first use: concurrent first uses insert once."""
    query = select(Sync).where(
        Sync.project_id == project_id, Sync.owner_id == owner, Sync.device_id == device_id
    )
    found = (await session.scalars(query)).first()
    if found is not None:
        return found
    await session.execute(
        insert(session, Sync)
        .values(
            project_id=project_id,
            name=device_id[:MAX_NAME],
            device_id=device_id,
            direction=ExchangeDirection.BOTH.value,
            owner_id=owner,
            created_by=owner,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["project_id", "owner_id", "device_id"])
    )
    return (await session.scalars(query)).one()


async def list_syncs(db: Database, principal: Principal, project: str) -> list[SyncInfo]:
    """The syncs of a project whose data you may see, by id."""
    async with db.session() as session:
        found = await require_project(session, project)
        query = select(Sync).where(Sync.project_id == found.id).order_by(Sync.id)
        visible = await visible_users(session, principal, found)
        if visible is not None:
            query = query.where(Sync.owner_id.in_(visible))  # type: ignore[attr-defined]
        return [_sync(s, project) for s in await session.scalars(query)]


async def get_sync(db: Database, principal: Principal, sync_id: int) -> SyncInfo:
    async with db.session() as session:
        sync = await _visible_sync(session, principal, sync_id)
        code = await session.scalar(select(Project.code).where(Project.id == sync.project_id))
        return _sync(sync, code or "")


# ---- runs, for callers (role rules checked, one transaction each)


async def start_sync_run(
    db: Database,
    principal: Principal,
    sync_id: int,
    *,
    full_sync: bool = False,
    trigger: TriggerReason | None = None,
    scheduled_execution_time: datetime | None = None,
    events: Events = NO_EVENTS,
) -> RunInfo:
    """A new run: WORKING, SKIPPED while another run of the sync works, or QUEUED when
    scheduled for later. Without a trigger reason: ``API``, started by the caller."""
    async with db.transaction() as session:
        sync = await _visible_sync(session, principal, sync_id)
        require_manage(principal, sync.owner_id)
        run = await start_run(
            session, sync, full_sync=full_sync,
            trigger=trigger or TriggerReason("API", f"Started by {principal.user_id}"),
            scheduled_execution_time=scheduled_execution_time,
        )  # fmt: skip
    await events.runs_changed([run])
    return run


async def update_sync_run(
    db: Database,
    principal: Principal,
    run_id: int,
    counters: Counters | None = None,
    current_step: str | None = None,
    *,
    events: Events = NO_EVENTS,
) -> RunInfo:
    """Set the given counters (totals so far) and the current step of a WORKING run."""
    return await _manage(
        db, principal, run_id, events,
        lambda s: update_run(s, run_id, counters, current_step=current_step),
    )  # fmt: skip


async def complete_sync_run(
    db: Database,
    principal: Principal,
    run_id: int,
    counters: Counters | None = None,
    *,
    events: Events = NO_EVENTS,
) -> RunInfo:
    return await _manage(db, principal, run_id, events, lambda s: complete_run(s, run_id, counters))


async def fail_sync_run(
    db: Database,
    principal: Principal,
    run_id: int,
    error_code: str,
    error_message: str | None = None,
    error_detail: str | None = None,
    *,
    events: Events = NO_EVENTS,
) -> RunInfo:
    return await _manage(
        db, principal, run_id, events,
        lambda s: fail_run(s, run_id, error_code, error_message, error_detail),
    )  # fmt: skip


async def cancel_sync_run(
    db: Database, principal: Principal, run_id: int, *, events: Events = NO_EVENTS
) -> RunInfo:
    return await _manage(
        db, principal, run_id, events, lambda s: cancel_run(s, run_id, principal.user_id)
    )


async def _manage(
    db: Database,
    principal: Principal,
    run_id: int,
    events: Events,
    transition: Callable[[AsyncSession], Awaitable[RunInfo]],
) -> RunInfo:
    """A transition of a run the caller manages, in a transaction of its own, announced once
    committed."""
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(SyncRun.project_id, Sync.owner_id)
                .join(Sync, Sync.id == SyncRun.sync_id)  # type: ignore[arg-type]
                .where(SyncRun.id == run_id)
            )
        ).first()
        if row is None or not await _may_see(session, principal, row.project_id, row.owner_id):
            raise _no_run(run_id)
        require_manage(principal, row.owner_id)
        run = await transition(session)
    await events.runs_changed([run])
    return run


async def get_run(db: Database, principal: Principal, run_id: int) -> RunInfo:
    async with db.session() as session:
        run = await _load_run(session, run_id)
        if run is None or not await _may_see(session, principal, run.project_id, run.owner):
            raise _no_run(run_id)
        return run


async def list_runs(
    db: Database,
    principal: Principal,
    sync_id: int,
    *,
    page: int = 1,
    per_page: int = 25,
    order: SortOrder = SortOrder.DESC,
) -> RunPage:
    """Census's list of a sync's runs, by creation time then id."""
    page, per_page = requested_page(page, per_page)
    async with db.session() as session:
        await _visible_sync(session, principal, sync_id)
        return await _page(session, [SyncRun.sync_id == sync_id], page, per_page, order)


async def list_project_runs(
    db: Database,
    principal: Principal,
    project: str,
    *,
    status: SyncRunStatus | None = None,
    page: int = 1,
    per_page: int = 25,
    order: SortOrder = SortOrder.DESC,
) -> RunPage:
    """The runs of every sync of a project you may see, optionally of one status."""
    page, per_page = requested_page(page, per_page)
    async with db.session() as session:
        found = await require_project(session, project)
        where = [SyncRun.project_id == found.id]
        if status is not None:
            where.append(SyncRun.status == status.value)
        visible = await visible_users(session, principal, found)
        if visible is not None:
            where.append(Sync.owner_id.in_(visible))  # type: ignore[attr-defined]
        return await _page(session, where, page, per_page, order)


# ---- runs, inside the caller's transaction (no role rules)


async def start_run(
    session: AsyncSession,
    sync: Sync,
    *,
    trigger: TriggerReason,
    full_sync: bool = False,
    scheduled_execution_time: datetime | None = None,
    concurrent: bool = False,
    now: datetime | None = None,
) -> RunInfo:
    """Start a run of ``sync`` (see the module's diagram). ``concurrent``: never SKIPPED, for
    exchanges the gateway runs itself side by side (a device's write during its live read)."""
    assert sync.id is not None
    now = now or utcnow()
    _trigger(trigger)
    if scheduled_execution_time is not None:
        scheduled_execution_time = _utc("scheduledExecutionTime", scheduled_execution_time)
    await _lock_sync(session, sync.id)
    status = SyncRunStatus.WORKING
    if scheduled_execution_time is not None and scheduled_execution_time > now:
        status = SyncRunStatus.QUEUED
    elif not concurrent and await _working(session, sync.id):
        status = SyncRunStatus.SKIPPED
    run = SyncRun(
        sync_id=sync.id, project_id=sync.project_id, status=status.value, created_at=now,
        updated_at=now, completed_at=now if status is SyncRunStatus.SKIPPED else None,
        scheduled_execution_time=scheduled_execution_time, full_sync=full_sync,
        trigger_ui_tag=trigger.ui_tag, trigger_ui_detail=trigger.ui_detail,
    )  # fmt: skip
    session.add(run)
    await session.flush()
    return _run(run, sync.owner_id)


_INSERT_RUN = sa_insert(SyncRun.__table__).returning(SyncRun.__table__.c.id)  # type: ignore[attr-defined]


async def record_run(
    session: AsyncSession,
    sync: Sync,
    status: SyncRunStatus,
    counters: Counters,
    *,
    trigger: TriggerReason,
    full_sync: bool = False,
    error_code: str | None = None,
    error_message: str | None = None,
    error_detail: str | None = None,
    now: datetime | None = None,
) -> RunInfo:
    """A run that started and finished inside the caller's transaction (a device's write or
    read), COMPLETED or FAILED: one INSERT of the finished row. It never waits for the sync's
    lock nor is SKIPPED: the gateway runs a device's exchanges side by side."""
    assert sync.id is not None and status in (SyncRunStatus.COMPLETED, SyncRunStatus.FAILED)
    now = now or utcnow()
    _trigger(trigger)
    row: dict[str, Any] = dict(
        sync_id=sync.id, project_id=sync.project_id, status=status.value, created_at=now,
        updated_at=now, completed_at=now, scheduled_execution_time=None, error_code=error_code,
        error_message=error_message, error_detail=error_detail, full_sync=full_sync,
        trigger_ui_tag=trigger.ui_tag, trigger_ui_detail=trigger.ui_detail, canceled=False,
        current_step=None, **{name: 0 for name in COUNTER_NAMES} | counters.given(),
    )  # fmt: skip
    # One prepared INSERT with parameters: a third of the ORM's flush (every device write and
    # read records a run).
    run_id = await session.scalar(_INSERT_RUN, row)
    return _run(SyncRun(id=run_id, **row), sync.owner_id)


async def update_run(
    session: AsyncSession,
    run_id: int,
    counters: Counters | None = None,
    *,
    current_step: str | None = None,
    add: bool = False,
    now: datetime | None = None,
) -> RunInfo:
    """Set the given counters (totals) and the step of a WORKING run, or with ``add`` add to
    them (atomically: concurrent additions all count). Updating nothing still marks the run
    updated, so a long exchange can keep it from timing out."""
    now = now or utcnow()
    given = counters.given() if counters else {}
    values: dict[str, Any] = (
        {name: getattr(SyncRun, name) + amount for name, amount in given.items()}
        if add
        else dict(given)
    )
    if current_step is not None:
        values["current_step"] = _text("currentStep", current_step, MAX_STEP)
    await _start_if_due(session, run_id, now)
    return await _transition(session, run_id, "update", (SyncRunStatus.WORKING,), now, values)


async def complete_run(
    session: AsyncSession,
    run_id: int,
    counters: Counters | None = None,
    *,
    now: datetime | None = None,
) -> RunInfo:
    """A WORKING run is COMPLETED, with the given counters (totals) set first."""
    now = now or utcnow()
    values: dict[str, Any] = dict(counters.given()) if counters else {}
    values |= {"status": SyncRunStatus.COMPLETED.value, "completed_at": now}
    await _start_if_due(session, run_id, now)
    return await _transition(session, run_id, "complete", (SyncRunStatus.WORKING,), now, values)


async def fail_run(
    session: AsyncSession,
    run_id: int,
    error_code: str,
    error_message: str | None = None,
    error_detail: str | None = None,
    *,
    now: datetime | None = None,
) -> RunInfo:
    """A QUEUED or WORKING run is FAILED with the given error."""
    now = now or utcnow()
    values = {
        "status": SyncRunStatus.FAILED.value, "completed_at": now,
        "error_code": _text("errorCode", error_code, MAX_ERROR_CODE),
        "error_message": error_message, "error_detail": error_detail,
    }  # fmt: skip
    return await _transition(session, run_id, "fail", ACTIVE, now, values)


async def cancel_run(
    session: AsyncSession, run_id: int, canceled_by: str, *, now: datetime | None = None
) -> RunInfo:
    """A QUEUED or WORKING run is FAILED and marked canceled."""
    now = now or utcnow()
    values = {
        "status": SyncRunStatus.FAILED.value, "completed_at": now, "canceled": True,
        "error_code": CANCELED_CODE, "error_message": f"Canceled by {canceled_by}",
    }  # fmt: skip
    return await _transition(session, run_id, "cancel", ACTIVE, now, values)


# ---- the sweeper: timeouts and queued runs whose time came


async def fail_timed_out_runs(
    session: AsyncSession, now: datetime, timeout_seconds: float
) -> list[RunInfo]:
    """FAIL the WORKING runs not updated for ``timeout_seconds`` before ``now``. Several
    replicas may sweep at once: the conditional UPDATE fails each run once."""
    cutoff = now - timedelta(seconds=timeout_seconds)
    stale = (
        SyncRun.status == SyncRunStatus.WORKING.value,
        SyncRun.updated_at < cutoff,  # type: ignore[operator]
    )
    ids = list(
        await session.scalars(
            select(SyncRun.id).where(*stale).order_by(SyncRun.updated_at).limit(SWEEP_BATCH)
        )
    )
    if not ids:
        return []
    failed = await session.scalars(
        update(SyncRun)
        .where(in_values(session, SyncRun.id, ids), *stale)
        .values(
            status=SyncRunStatus.FAILED.value,
            completed_at=now,
            updated_at=now,
            error_code=TIMEOUT_CODE,
            error_message=f"No update for {timeout_seconds:g} seconds: the gateway failed the run.",
        )
        .returning(SyncRun.id)
        .execution_options(synchronize_session=False)
    )
    return await _load_runs(session, list(failed))


async def start_due_runs(session: AsyncSession, now: datetime) -> list[RunInfo]:
    """Start the QUEUED runs whose scheduled time has come, earliest first."""
    due = (
        await session.execute(
            select(SyncRun.id, SyncRun.sync_id)
            .where(
                SyncRun.status == SyncRunStatus.QUEUED.value,
                SyncRun.scheduled_execution_time <= now,  # type: ignore[operator]
            )
            .order_by(SyncRun.scheduled_execution_time, SyncRun.id)
            .limit(SWEEP_BATCH)
        )
    ).all()
    started = [run_id for run_id, sync_id in due if await _promote(session, run_id, sync_id, now)]
    return await _load_runs(session, started)


async def sweep_runs(
    db: Database, timeout_seconds: float, now: datetime | None = None
) -> list[RunInfo]:
    """One sweep: time out stale WORKING runs, start due QUEUED ones. Looks first without
    the write lock, so that an idle sweep costs SQLite's writers nothing."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    async with db.session() as session:
        pending = await session.scalar(
            select(SyncRun.id)
            .where(
                (
                    (SyncRun.status == SyncRunStatus.WORKING.value) & (SyncRun.updated_at < cutoff)  # type: ignore[operator]
                )
                | (
                    (SyncRun.status == SyncRunStatus.QUEUED.value)
                    & (SyncRun.scheduled_execution_time <= now)  # type: ignore[operator]
                )
            )
            .limit(1)
        )
    if pending is None:
        return []
    async with db.transaction() as session:
        return [
            *await fail_timed_out_runs(session, now, timeout_seconds),
            *await start_due_runs(session, now),
        ]


async def prune_finished_runs(db: Database, now: datetime, retention_days: float) -> int:
    """Delete finished runs that completed more than ``retention_days`` before ``now``, at most
    a sweep's batch at a time: every device read and write is a run, so unpruned they grow
    without bound. Looks first without the write lock, like ``sweep_runs``. Returns how many
    went."""
    expired = SyncRun.completed_at < now - timedelta(days=retention_days)  # type: ignore[operator]
    async with db.session() as session:  # only finished runs have a completion time
        old = (
            await session.scalars(
                select(SyncRun.id).where(expired).order_by(SyncRun.completed_at).limit(SWEEP_BATCH)
            )
        ).all()
    if not old:
        return 0
    async with db.transaction() as session:
        await session.execute(delete(SyncRun).where(in_values(session, SyncRun.id, old), expired))
    return len(old)


# ---- for live feeds (no role rules: the feed serves everyone, subscribers filter)


async def runs_by_id(db: Database, run_ids: Iterable[int]) -> list[RunInfo]:
    async with db.session() as session:
        return await _load_runs(session, list(run_ids))


async def runs_changed_since(db: Database, project_id: int, since: datetime) -> list[RunInfo]:
    """A project's runs changed at or after ``since``, oldest change first."""
    async with db.session() as session:
        query = _runs_query().where(
            # every status, so that the (status, updated_at) index serves the time range
            SyncRun.status.in_([s.value for s in SyncRunStatus]),  # type: ignore[attr-defined]
            SyncRun.updated_at >= since,  # type: ignore[operator]
            SyncRun.project_id == project_id,
        )
        return _runs((await session.execute(query.order_by(SyncRun.updated_at))).all())


async def active_runs(
    db: Database, project_id: int, visible: set[str] | None, sync_id: int | None
) -> list[RunInfo]:
    """The QUEUED and WORKING runs a live subscriber starts with."""
    async with db.session() as session:
        query = _runs_query().where(
            SyncRun.project_id == project_id,
            SyncRun.status.in_([s.value for s in ACTIVE]),  # type: ignore[attr-defined]
        )
        if visible is not None:
            query = query.where(Sync.owner_id.in_(visible))  # type: ignore[attr-defined]
        if sync_id is not None:
            query = query.where(SyncRun.sync_id == sync_id)
        return _runs((await session.execute(query.order_by(SyncRun.id))).all())


async def run_scope(
    db: Database, principal: Principal, project: str, sync_id: int | None
) -> tuple[int, set[str] | None]:
    """A subscriber's project id and whose runs it may see; the sync, when given, must be
    one of the project's that it may see."""
    async with db.session() as session:
        found = await require_project(session, project)
        assert found.id is not None
        if sync_id is not None:
            sync = await _visible_sync(session, principal, sync_id)
            if sync.project_id != found.id:
                raise NotFound(f"sync {sync_id} is not in project {project!r}", field="syncId")
        return found.id, await visible_users(session, principal, found)


# ---- helpers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _text(field: str, value: str, limit: int) -> str:
    if not value.strip() or len(value) > limit:
        raise BadUserInput(f"{field} must be 1 to {limit} characters", field=field)
    return value


def _check_tables(
    project: str,
    declared: Iterable[str],
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
) -> None:
    for field, names in (("includeTables", include), ("excludeTables", exclude)):
        unknown = sorted(set(names or ()) - set(declared))
        if unknown:
            raise BadUserInput(f"{field}: {project!r} has no table {unknown[0]!r}", field=field)


def _utc(field: str, value: datetime) -> datetime:
    """A time with a zone, in UTC; one whose UTC form is outside years 1 to 9999 is refused."""
    if value.tzinfo is None:
        raise BadUserInput(f"{field} needs a time zone", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise BadUserInput(f"{field} is out of range", field=field) from exc


def _trigger(trigger: TriggerReason) -> None:
    _text("syncTriggerReason.uiTag", trigger.ui_tag, MAX_TAG)


async def _may_see(
    session: AsyncSession, principal: Principal, project_id: int, owner: str
) -> bool:
    project = await session.get(Project, project_id)
    return project is not None and await may_see_user(session, principal, project, owner)


async def _visible_sync(session: AsyncSession, principal: Principal, sync_id: int) -> Sync:
    sync = await session.get(Sync, sync_id)
    if sync is None or not await _may_see(session, principal, sync.project_id, sync.owner_id):
        raise NotFound(f"sync {sync_id} does not exist", field="syncId")
    return sync


def _no_run(run_id: int) -> NotFound:
    return NotFound(f"sync run {run_id} does not exist", field="id")


async def _check_device_free(
    session: AsyncSession, project_id: int, owner: str, device_id: str
) -> None:
    """Only ``owner``'s own devices count: another user's device of the same id is another
    device, and whether it exists is none of the caller's business."""
    if await session.scalar(
        select(Sync.id).where(
            Sync.project_id == project_id, Sync.owner_id == owner, Sync.device_id == device_id
        )
    ):
        raise Conflict(f"device {device_id!r} already has a sync", field="deviceId")


async def _lock_sync(session: AsyncSession, sync_id: int) -> None:
    """Serialize the starts of one sync's runs (SQLite's writers are serialized already)."""
    await session.execute(select(Sync.id).where(Sync.id == sync_id).with_for_update())


async def _working(session: AsyncSession, sync_id: int) -> bool:
    found = await session.scalar(
        select(SyncRun.id)
        .where(SyncRun.sync_id == sync_id, SyncRun.status == SyncRunStatus.WORKING.value)
        .limit(1)
    )
    return found is not None


async def _promote(session: AsyncSession, run_id: int, sync_id: int, now: datetime) -> bool:
    """Start a QUEUED run: WORKING, or SKIPPED when another run of its sync works."""
    await _lock_sync(session, sync_id)
    values: dict[str, Any] = {"status": SyncRunStatus.WORKING.value}
    if await _working(session, sync_id):
        values = {"status": SyncRunStatus.SKIPPED.value, "completed_at": now}
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == SyncRunStatus.QUEUED.value)
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def _start_if_due(session: AsyncSession, run_id: int, now: datetime) -> None:
    """A QUEUED run touched after its scheduled time starts before what touched it applies."""
    sync_id = await session.scalar(
        select(SyncRun.sync_id).where(
            SyncRun.id == run_id,
            SyncRun.status == SyncRunStatus.QUEUED.value,
            SyncRun.scheduled_execution_time <= now,  # type: ignore[operator]
        )
    )
    if sync_id is not None:
        await _promote(session, run_id, sync_id, now)


async def _transition(
    session: AsyncSession,
    run_id: int,
    action: str,
    allowed: Sequence[SyncRunStatus],
    now: datetime,
    values: dict[str, Any],
) -> RunInfo:
    """Apply ``values`` if the run is in an ``allowed`` status, in one conditional UPDATE;
    otherwise nothing changes and the answer is NOT_FOUND or CONFLICT."""
    result = await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status.in_([s.value for s in allowed]))  # type: ignore[attr-defined]
        .values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = await _load_run(session, run_id)
        if current is None:
            raise _no_run(run_id)
        why = f"cannot {action} sync run {run_id}: it is {current.status.value}"
        if current.status is SyncRunStatus.QUEUED:
            why += f" until {current.scheduled_execution_time:%Y-%m-%dT%H:%M:%S%z}"
        raise Conflict(why, status=current.status.value)
    run = await _load_run(session, run_id)
    assert run is not None
    return run


def _runs_query() -> Select[tuple[SyncRun, str]]:
    return select(SyncRun, Sync.owner_id).join(Sync, Sync.id == SyncRun.sync_id)  # type: ignore[arg-type]


async def _load_run(session: AsyncSession, run_id: int) -> RunInfo | None:
    runs = await _load_runs(session, [run_id])
    return runs[0] if runs else None


async def _load_runs(session: AsyncSession, run_ids: list[int]) -> list[RunInfo]:
    if not run_ids:
        return []
    rows = await session.execute(
        _runs_query()
        .where(in_values(session, SyncRun.id, run_ids))
        .order_by(SyncRun.id)
        # Transitions are Core UPDATEs: refresh what the session may hold.
        .execution_options(populate_existing=True)
    )
    return _runs(rows.all())


async def _page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    page: int,
    per_page: int,
    order: SortOrder,
) -> RunPage:
    joined = select(func.count()).select_from(SyncRun).join(Sync, Sync.id == SyncRun.sync_id)  # type: ignore[arg-type]
    total = await session.scalar(joined.where(*where)) or 0
    pagination = paginate(page, per_page, total)
    keys = [SyncRun.created_at, SyncRun.id]
    ordered = [k.desc() if order is SortOrder.DESC else k.asc() for k in keys]  # type: ignore[union-attr]
    rows = await session.execute(
        _runs_query().where(*where).order_by(*ordered).offset(pagination.offset).limit(per_page)
    )
    return RunPage(pagination, _runs(rows.all()))


def _runs(rows: Iterable[Any]) -> list[RunInfo]:
    return [_run(run, owner) for run, owner in rows]


def _run(r: SyncRun, owner: str) -> RunInfo:
    assert r.id is not None
    return RunInfo(
        id=r.id, sync_id=r.sync_id, project_id=r.project_id, owner=owner,
        status=SyncRunStatus(r.status), created_at=r.created_at, updated_at=r.updated_at,
        completed_at=r.completed_at, scheduled_execution_time=r.scheduled_execution_time,
        error_code=r.error_code, error_message=r.error_message, error_detail=r.error_detail,
        counters={name: getattr(r, name) for name in COUNTER_NAMES}, full_sync=r.full_sync,
        trigger=TriggerReason(r.trigger_ui_tag, r.trigger_ui_detail), canceled=r.canceled,
        current_step=r.current_step,
    )  # fmt: skip


def _sync(s: Sync, project: str) -> SyncInfo:
    assert s.id is not None
    return SyncInfo(
        id=s.id, project=project, name=s.name, device_id=s.device_id,
        direction=ExchangeDirection(s.direction), include_tables=s.include_tables,
        exclude_tables=s.exclude_tables, owner=s.owner_id, created_by=s.created_by,
        created_at=s.created_at,
    )  # fmt: skip
