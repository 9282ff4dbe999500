"""Syncs: created for an external job or one per device (on its first exchange), listed
and looked up with the role rules of ``gateway/auth/access.py``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
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
from gateway.db.dialect import insert
from gateway.db.models import Project, Sync
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.sync.projects import load_catalog, require_project
from gateway.sync.runs.model import MAX_NAME, ExchangeDirection, SyncInfo, to_sync
from gateway.sync.text import check_length


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
    name = check_length("name", name, MAX_NAME)
    if device_id is not None:
        check_length("deviceId", device_id, MAX_NAME)
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
                project_id=found.id,
                name=name,
                device_id=device_id,
                direction=direction.value,
                include_tables=list(include_tables) if include_tables else None,
                exclude_tables=list(exclude_tables) if exclude_tables else None,
                owner_id=owner,
                created_by=principal.user_id,
            )
            session.add(sync)
            await session.flush()
            return to_sync(sync, project)
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
        return [to_sync(s, project) for s in await session.scalars(query)]


async def get_sync(db: Database, principal: Principal, sync_id: int) -> SyncInfo:
    async with db.session() as session:
        sync = await visible_sync(session, principal, sync_id)
        code = await session.scalar(select(Project.code).where(Project.id == sync.project_id))
        return to_sync(sync, code or "")


async def may_see(session: AsyncSession, principal: Principal, project_id: int, owner: str) -> bool:
    project = await session.get(Project, project_id)
    return project is not None and await may_see_user(session, principal, project, owner)


async def visible_sync(session: AsyncSession, principal: Principal, sync_id: int) -> Sync:
    sync = await session.get(Sync, sync_id)
    if sync is None or not await may_see(session, principal, sync.project_id, sync.owner_id):
        raise NotFound(f"sync {sync_id} does not exist", field="syncId")
    return sync


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
