"""Reads for the live run feeds: no role rules, the feed serves every subscriber of a
project and each filters what it may see."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from gateway.auth.access import visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Sync, SyncRun
from gateway.errors import NotFound
from gateway.sync.projects import require_project
from gateway.sync.runs.loading import load_runs, runs_query, to_runs
from gateway.sync.runs.model import ACTIVE, RunInfo, SyncRunStatus
from gateway.sync.runs.syncs import visible_sync


async def runs_by_id(db: Database, run_ids: Iterable[int]) -> list[RunInfo]:
    async with db.session() as session:
        return await load_runs(session, list(run_ids))


async def runs_changed_since(db: Database, project_id: int, since: datetime) -> list[RunInfo]:
    """A project's runs changed at or after ``since``, oldest change first."""
    async with db.session() as session:
        query = runs_query().where(
            # every status, so that the (status, updated_at) index serves the time range
            SyncRun.status.in_([s.value for s in SyncRunStatus]),  # type: ignore[attr-defined]
            SyncRun.updated_at >= since,  # type: ignore[operator]
            SyncRun.project_id == project_id,
        )
        return to_runs((await session.execute(query.order_by(SyncRun.updated_at))).all())


async def active_runs(
    db: Database, project_id: int, visible: set[str] | None, sync_id: int | None
) -> list[RunInfo]:
    """The QUEUED and WORKING runs a live subscriber starts with."""
    async with db.session() as session:
        query = runs_query().where(
            SyncRun.project_id == project_id,
            SyncRun.status.in_([s.value for s in ACTIVE]),  # type: ignore[attr-defined]
        )
        if visible is not None:
            query = query.where(Sync.owner_id.in_(visible))  # type: ignore[attr-defined]
        if sync_id is not None:
            query = query.where(SyncRun.sync_id == sync_id)
        return to_runs((await session.execute(query.order_by(SyncRun.id))).all())


async def run_scope(
    db: Database, principal: Principal, project: str, sync_id: int | None
) -> tuple[int, set[str] | None]:
    """A subscriber's project id and whose runs it may see; the sync, when given, must be
    one of the project's that it may see."""
    async with db.session() as session:
        found = await require_project(session, project)
        assert found.id is not None
        if sync_id is not None:
            sync = await visible_sync(session, principal, sync_id)
            if sync.project_id != found.id:
                raise NotFound(f"sync {sync_id} is not in project {project!r}", field="syncId")
        return found.id, await visible_users(session, principal, found)
