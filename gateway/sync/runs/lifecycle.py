"""A run's state machine, inside the caller's write transaction and without role rules
(see the package's diagram): every transition is one conditional UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Sync, SyncRun
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.sync.runs.loading import load_run
from gateway.sync.runs.model import (
    ACTIVE,
    CANCELED_CODE,
    COUNTER_NAMES,
    MAX_ERROR_CODE,
    MAX_STEP,
    MAX_TAG,
    Counters,
    RunInfo,
    SyncRunStatus,
    TriggerReason,
    to_run,
)
from gateway.sync.text import check_length


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
        sync_id=sync.id,
        project_id=sync.project_id,
        status=status.value,
        created_at=now,
        updated_at=now,
        completed_at=now if status is SyncRunStatus.SKIPPED else None,
        scheduled_execution_time=scheduled_execution_time,
        full_sync=full_sync,
        trigger_ui_tag=trigger.ui_tag,
        trigger_ui_detail=trigger.ui_detail,
    )
    session.add(run)
    await session.flush()
    return to_run(run, sync.owner_id)


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
        sync_id=sync.id,
        project_id=sync.project_id,
        status=status.value,
        created_at=now,
        updated_at=now,
        completed_at=now,
        scheduled_execution_time=None,
        error_code=error_code,
        error_message=error_message,
        error_detail=error_detail,
        full_sync=full_sync,
        trigger_ui_tag=trigger.ui_tag,
        trigger_ui_detail=trigger.ui_detail,
        canceled=False,
        current_step=None,
        **{name: 0 for name in COUNTER_NAMES} | counters.given(),
    )
    # One prepared INSERT with parameters: a third of the ORM's flush (every device write and
    # read records a run).
    run_id = await session.scalar(_INSERT_RUN, row)
    return to_run(SyncRun(id=run_id, **row), sync.owner_id)


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
        values["current_step"] = check_length("currentStep", current_step, MAX_STEP)
    await _start_if_due(session, run_id, now)
    return await _transition(session, run_id, "update", (SyncRunStatus.WORKING,), now, values)


async def complete_run(
    session: AsyncSession,
    run_id: int,
    counters: Counters | None = None,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    error_detail: str | None = None,
    now: datetime | None = None,
) -> RunInfo:
    """A WORKING run is COMPLETED, with the given counters (totals) set first. It may carry an
    error that did not fail it (Census's records rejected by the destination); its current
    step is cleared (a step only describes a run that is not finished)."""
    now = now or utcnow()
    values: dict[str, Any] = dict(counters.given()) if counters else {}
    if error_code is not None:
        values["error_code"] = check_length("errorCode", error_code, MAX_ERROR_CODE)
    elif error_message is not None or error_detail is not None:
        raise BadUserInput("errorMessage and errorDetail need an errorCode", field="errorCode")
    values |= {
        "status": SyncRunStatus.COMPLETED.value,
        "completed_at": now,
        "error_message": error_message,
        "error_detail": error_detail,
        "current_step": None,
    }
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
        "status": SyncRunStatus.FAILED.value,
        "completed_at": now,
        "error_code": check_length("errorCode", error_code, MAX_ERROR_CODE),
        "error_message": error_message,
        "error_detail": error_detail,
        "current_step": None,
    }
    return await _transition(session, run_id, "fail", ACTIVE, now, values)


async def cancel_run(
    session: AsyncSession, run_id: int, canceled_by: str, *, now: datetime | None = None
) -> RunInfo:
    """A QUEUED or WORKING run is FAILED and marked canceled."""
    now = now or utcnow()
    values = {
        "status": SyncRunStatus.FAILED.value,
        "completed_at": now,
        "canceled": True,
        "error_code": CANCELED_CODE,
        "error_message": f"Canceled by {canceled_by}",
        "current_step": None,
    }
    return await _transition(session, run_id, "cancel", ACTIVE, now, values)


def _utc(field: str, value: datetime) -> datetime:
    """A time with a zone, in UTC; one whose UTC form is outside years 1 to 9999 is refused."""
    if value.tzinfo is None:
        raise BadUserInput(f"{field} needs a time zone", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise BadUserInput(f"{field} is out of range", field=field) from exc


def _trigger(trigger: TriggerReason) -> None:
    check_length("syncTriggerReason.uiTag", trigger.ui_tag, MAX_TAG)


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


async def promote(session: AsyncSession, run_id: int, sync_id: int, now: datetime) -> bool:
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
        await promote(session, run_id, sync_id, now)


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
        current = await load_run(session, run_id)
        if current is None:
            raise no_run(run_id)
        why = f"cannot {action} sync run {run_id}: it is {current.status.value}"
        if current.status is SyncRunStatus.QUEUED:
            why += f" until {current.scheduled_execution_time:%Y-%m-%dT%H:%M:%S%z}"
        raise Conflict(why, status=current.status.value)
    run = await load_run(session, run_id)
    assert run is not None
    return run


def no_run(run_id: int) -> NotFound:
    return NotFound(f"sync run {run_id} does not exist", field="id")
