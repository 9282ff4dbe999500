"""Sync history (CSPro's): a device's exchanges as events. Every write from a device records a
PUT; every read that delivers actions to a device records a GET (``gateway/sync/exchange.py``);
another service's syncs are reported with ``record_sync_event``. Also CSPro's summary (the last
put and get) and its sync services (each device that synced, with its names).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import CALLER, caller_is_member, may_see_user
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Device, Project, SyncEvent
from gateway.db.types import utcnow
from gateway.errors import BadUserInput
from gateway.sync import keyset
from gateway.sync.devices import named_device, project_scope
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.exchange import Direction, check_text, record_event, touch_device
from gateway.sync.projects import open_user_data


@dataclass(frozen=True, slots=True)
class SyncEventInfo:
    id: int
    time: datetime
    device_id: str
    device_name: str
    username: str
    user: str
    universe: str
    direction: Direction
    partial: bool
    cursor: str


@dataclass(frozen=True, slots=True)
class HistoryPage:
    events: list[SyncEventInfo]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class SyncService:
    user: str  # whose data the device syncs
    device_id: str
    device_names: list[str]
    first_sync_time: datetime
    last_sync_time: datetime


async def record_sync_event(
    db: Database,
    principal: Principal,
    project: str,
    device_id: str,
    *,
    direction: Direction,
    device_name: str | None = None,
    universe: str = "",
    partial: bool = False,
    user: str | None = None,
    time: datetime | None = None,
    username: str | None = None,
    events: Events = NO_EVENTS,
) -> SyncEventInfo:
    """A sync of ``user``'s device with another service (CSPro's Dropbox example), at ``time``
    (omitted: now; never in the future) by the service's ``username`` (omitted: the caller)."""
    if time is not None:
        if time.tzinfo is None:
            raise BadUserInput("time needs a time zone", field="time")
        time = time.astimezone(UTC)
        if time > utcnow():
            raise BadUserInput("time cannot be in the future", field="time")
    if username is not None:
        check_text("username", username)
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        device = await touch_device(
            session, data.project_id, data.user, device_id, name=device_name
        )
        event = record_event(
            session,
            device,
            username=username or principal.user_id,
            direction=direction,
            universe=universe,
            partial=partial,
            device_name=device_name,
            time=time,
        )
        await session.flush()
        recorded = to_event(event)
        changes = Changes(statuses=[project])
        await events.staged(session, changes)
    await events.committed(changes)
    return recorded


async def sync_history(
    db: Database,
    principal: Principal,
    project: str,
    *,
    device_name: str | None = None,
    user: str | None = None,
    direction: Direction | None = None,
    first: int = 50,
    after: str | None = None,
) -> HistoryPage:
    """Sync events, newest first: of ``user``'s device known by ``device_name`` (omitted user:
    yours) when one is named; else of ``user`` when given; else of everyone you may see."""
    keyset.check_first(first)
    async with db.session() as session:
        query = await _events(session, principal, project, device_name, user)
        if direction is not None:
            query = query.where(SyncEvent.direction == direction.value)
        if after is not None:
            query = query.where(SyncEvent.id < keyset.decode(after, keyset.CursorKind.SYNC_EVENTS))  # type: ignore[operator]
        rows = (
            await session.scalars(
                query.order_by(SyncEvent.id.desc()).limit(first + 1)  # type: ignore[union-attr]
            )
        ).all()
    return HistoryPage([to_event(e) for e in rows[:first]], has_next_page=len(rows) > first)


async def last_event(
    db: Database,
    principal: Principal,
    project: str,
    direction: Direction,
    device_name: str | None = None,
    user: str | None = None,
) -> SyncEventInfo | None:
    """CSPro's summary: the latest put (or get), of one device when it is named."""
    page = await sync_history(
        db, principal, project, device_name=device_name, user=user, direction=direction, first=1
    )
    return page.events[0] if page.events else None


async def get_event(db: Database, principal: Principal, event_id: int) -> SyncEventInfo | None:
    """One sync event by its id; None when there is none or the caller may not see the data
    of the user it belongs to (as if there were none)."""
    async with db.session() as session:
        found = (
            await session.execute(
                select(SyncEvent, Project, caller_is_member(Project.id))  # type: ignore[arg-type]
                .join(Project, Project.id == SyncEvent.project_id)  # type: ignore[arg-type]
                .where(SyncEvent.id == event_id),
                {CALLER.key: principal.user_id},
            )
        ).first()
        if found is None:
            return None
        event, project, member = found
        if not await may_see_user(session, principal, project, event.user_id, member=member):
            return None
    return to_event(event)


async def sync_services(db: Database, principal: Principal, project: str) -> list[SyncService]:
    """Each device you may see that synced, with every name it had and its first and last
    sync."""
    async with db.session() as session:
        found, visible = await project_scope(session, principal, project)
        query = (
            select(
                SyncEvent.user_id,
                SyncEvent.device_id,
                func.min(SyncEvent.time),
                func.max(SyncEvent.time),
            )
            .where(SyncEvent.project_id == found)
            .group_by(SyncEvent.user_id, SyncEvent.device_id)
            .order_by(SyncEvent.device_id, SyncEvent.user_id)
        )
        devices_query = select(Device).where(Device.project_id == found)
        if visible is not None:
            query = query.where(SyncEvent.user_id.in_(visible))  # type: ignore[attr-defined]
            devices_query = devices_query.where(Device.owner_id.in_(visible))  # type: ignore[attr-defined]
        spans = (await session.execute(query)).all()
        devices = {(d.owner_id, d.device_id): d for d in await session.scalars(devices_query)}
    return [
        SyncService(
            user=user,
            device_id=device_id,
            device_names=list(devices[(user, device_id)].names) or [device_id],
            first_sync_time=first,
            last_sync_time=last,
        )
        for user, device_id, first, last in spans
        if (user, device_id) in devices
    ]


async def _events(
    session: AsyncSession,
    principal: Principal,
    project: str,
    device_name: str | None,
    user: str | None,
) -> Select[tuple[SyncEvent]]:
    if device_name is not None:
        return device_events(await named_device(session, principal, project, user, device_name))
    if user is not None:
        data = await open_user_data(session, principal, project, user)
        return select(SyncEvent).where(
            SyncEvent.project_id == data.project_id, SyncEvent.user_id == data.user
        )
    project_id, visible = await project_scope(session, principal, project)
    query = select(SyncEvent).where(SyncEvent.project_id == project_id)
    if visible is not None:
        query = query.where(SyncEvent.user_id.in_(visible))  # type: ignore[attr-defined]
    return query


def device_events(device: Device) -> Select[tuple[SyncEvent]]:
    return select(SyncEvent).where(
        SyncEvent.project_id == device.project_id,
        SyncEvent.user_id == device.owner_id,
        SyncEvent.device_id == device.device_id,
    )


def to_event(e: SyncEvent) -> SyncEventInfo:
    assert e.id is not None
    return SyncEventInfo(
        id=e.id,
        time=e.time,
        device_id=e.device_id,
        device_name=e.device_name,
        username=e.username,
        user=e.user_id,
        universe=e.universe,
        direction=Direction(e.direction),
        partial=e.partial,
        cursor=keyset.encode(e.id, keyset.CursorKind.SYNC_EVENTS),
    )
