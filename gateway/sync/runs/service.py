"""Runs for callers: role rules checked, one transaction each, announced once committed;
and Census's paged listings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import (
    CALLER,
    caller_is_member,
    may_see_user,
    require_manage,
    visible_users,
)
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.lookup import Lookup
from gateway.db.models import Project, Sync, SyncRun
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.projects import require_project
from gateway.sync.runs.lifecycle import (
    cancel_run,
    complete_run,
    fail_run,
    no_run,
    start_run,
    update_run,
)
from gateway.sync.runs.loading import runs_query, to_runs
from gateway.sync.runs.model import (
    Counters,
    RunInfo,
    RunPage,
    SyncRunStatus,
    TriggerReason,
    to_run,
)
from gateway.sync.runs.paging import SortOrder, paginate, requested_page
from gateway.sync.runs.syncs import may_see, visible_sync


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
        sync = await visible_sync(session, principal, sync_id)
        require_manage(principal, sync.owner_id)
        run = await start_run(
            session,
            sync,
            full_sync=full_sync,
            trigger=trigger or TriggerReason("API", f"Started by {principal.user_id}"),
            scheduled_execution_time=scheduled_execution_time,
        )
        changes = Changes(runs=[run])
        await events.staged(session, changes)
    await events.committed(changes)
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
        db,
        principal,
        run_id,
        events,
        lambda s: update_run(s, run_id, counters, current_step=current_step),
    )


async def complete_sync_run(
    db: Database,
    principal: Principal,
    run_id: int,
    counters: Counters | None = None,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    error_detail: str | None = None,
    events: Events = NO_EVENTS,
) -> RunInfo:
    """A WORKING run finished: COMPLETED, optionally with an error that did not fail it."""
    return await _manage(
        db,
        principal,
        run_id,
        events,
        lambda s: complete_run(
            s,
            run_id,
            counters,
            error_code=error_code,
            error_message=error_message,
            error_detail=error_detail,
        ),
    )


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
        db,
        principal,
        run_id,
        events,
        lambda s: fail_run(s, run_id, error_code, error_message, error_detail),
    )


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
        if row is None or not await may_see(session, principal, row.project_id, row.owner_id):
            raise no_run(run_id)
        require_manage(principal, row.owner_id)
        run = await transition(session)
        changes = Changes(runs=[run])
        await events.staged(session, changes)
    await events.committed(changes)
    return run


# Built once: building a statement costs more than running it on a warm connection. The
# caller's membership comes with the run, so a lookup is one round trip, on the driver.
_PROJECT_COLUMNS = tuple(Project.__table__.c.keys())  # type: ignore[attr-defined]
_RUN_WITH_PROJECT = Lookup(
    runs_query()
    .add_columns(
        *(getattr(Project, c).label(f"of_project_{c}") for c in _PROJECT_COLUMNS),
        caller_is_member(SyncRun.project_id).label("caller_is_member"),  # type: ignore[arg-type]
    )
    .join(Project, Project.id == SyncRun.project_id)  # type: ignore[arg-type]
    .where(SyncRun.id == bindparam("run_id"))
)


async def get_run(db: Database, principal: Principal, run_id: int) -> RunInfo:
    """One run, with its project in the same query (a lookup by id is the hot read of run
    dashboards); NOT_FOUND when the caller may not see it."""
    row = await _RUN_WITH_PROJECT.first(db, {"run_id": run_id, CALLER.key: principal.user_id})
    if row is None:
        raise no_run(run_id)
    # As the database has it: without validation (a sixth of a lookup's CPU), never stored.
    project = Project.model_construct(
        **{c: getattr(row, f"of_project_{c}") for c in _PROJECT_COLUMNS}
    )
    # A session connects on its first statement: only a professional's look at another
    # user's run asks it anything (a grant).
    async with db.lookup() as session:
        member = row.caller_is_member
        if not await may_see_user(session, principal, project, row.owner_id, member=member):
            raise no_run(run_id)
    return to_run(row, row.owner_id)


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
        await visible_sync(session, principal, sync_id)
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
        runs_query().where(*where).order_by(*ordered).offset(pagination.offset).limit(per_page)
    )
    return RunPage(pagination, to_runs(rows.all()))
