"""The sweeper: WORKING runs that timed out fail, QUEUED runs whose time came start, and
finished runs past their retention go. Every replica sweeps; the conditional UPDATEs change each
run once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.db.dialect import in_values
from gateway.db.models import SyncRun
from gateway.db.types import utcnow
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.runs.lifecycle import promote
from gateway.sync.runs.loading import load_runs
from gateway.sync.runs.model import SWEEP_BATCH, TIMEOUT_CODE, RunInfo, SyncRunStatus
from gateway.tasks import cancelled

logger = logging.getLogger("gateway")


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
    return await load_runs(session, list(failed))


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
    started = [run_id for run_id, sync_id in due if await promote(session, run_id, sync_id, now)]
    return await load_runs(session, started)


async def sweep_runs(
    db: Database,
    timeout_seconds: float,
    now: datetime | None = None,
    *,
    events: Events = NO_EVENTS,
) -> list[RunInfo]:
    """One sweep: time out stale WORKING runs, start due QUEUED ones, announced with the
    commit. Looks first without the write lock, so that an idle sweep costs SQLite's writers
    nothing."""
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
        changes = Changes(
            runs=[
                *await fail_timed_out_runs(session, now, timeout_seconds),
                *await start_due_runs(session, now),
            ]
        )
        await events.staged(session, changes)
    await events.committed(changes)
    return changes.runs


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


class RunSweeper:
    """Sweeps every few seconds in the background (``start``/``stop``): runs that timed out or
    came due are announced, and finished runs are pruned every few minutes when a retention is
    set (a full batch: again at the next sweep)."""

    PRUNE_SECONDS = 600.0  # runs expire in days: pruning every few minutes is plenty

    def __init__(
        self, db: Database, events: Events, timeout_seconds: float, retention_days: float
    ) -> None:
        self._db, self._events = db, events
        self._timeout, self._retention = timeout_seconds, retention_days
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweep_forever(), name="run-sweeper")

    async def stop(self) -> None:
        await cancelled(self._task)
        self._task = None

    async def _sweep_forever(self) -> None:
        interval = min(5.0, self._timeout / 4)
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep_runs(self._db, self._timeout, events=self._events)
                if self._retention and loop.time() >= next_prune:
                    pruned = await prune_finished_runs(self._db, utcnow(), self._retention)
                    pause = min(self.PRUNE_SECONDS, self._retention * 86_400 / 4)
                    next_prune = loop.time() + (0 if pruned >= SWEEP_BATCH else pause)
            except Exception:
                logger.exception("could not sweep sync runs")
