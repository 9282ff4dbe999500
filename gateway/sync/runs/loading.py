"""Reading runs back as ``RunInfo`` (with their sync's owner), for every other module."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.dialect import in_values
from gateway.db.models import Sync, SyncRun
from gateway.sync.runs.model import RunInfo, to_run


def runs_query() -> Select[Any]:
    """A run's columns and its sync's owner, as plain rows (no ORM objects to build)."""
    return select(*SyncRun.__table__.c, Sync.owner_id).join(  # type: ignore[attr-defined]
        Sync,
        Sync.id == SyncRun.sync_id,  # type: ignore[arg-type]
    )


async def load_run(session: AsyncSession, run_id: int) -> RunInfo | None:
    runs = await load_runs(session, [run_id])
    return runs[0] if runs else None


async def load_runs(session: AsyncSession, run_ids: list[int]) -> list[RunInfo]:
    if not run_ids:
        return []
    rows = await session.execute(
        runs_query().where(in_values(session, SyncRun.id, run_ids)).order_by(SyncRun.id)
    )
    return to_runs(rows.all())


def to_runs(rows: Iterable[Any]) -> list[RunInfo]:
    return [to_run(row, row.owner_id) for row in rows]
