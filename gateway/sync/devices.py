"""Devices and their sync events (CSPro's sync history, RegardingWork's devices).

A device is (project, user, deviceId): a sync client of one user's data. It is registered the
first time an exchange names it (a write or a read with its deviceId) or when it reports
itself (``gateway/sync/exchange.py`` keeps that bookkeeping). Every write from a device records
a PUT; every read that delivers actions to a device records a GET; another service's syncs are
reported with ``record_sync_event``.

``deviceName`` arguments name a device of one user (the ``user`` argument, omitted: the
caller): an exact deviceId wins, else any name the device has had; a name several of the
user's devices have had is ``BAD_USER_INPUT`` naming their deviceIds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Device, Project, ProjectTable, Record, SyncEvent
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, NotFound
from gateway.sync import keyset
from gateway.sync.events import NO_EVENTS, Events
from gateway.sync.exchange import Direction, record_event, touch_device
from gateway.sync.pending import (
    PendingCase,
    count_pending,
    dashed,
    pending_counts,
    pending_query,
)
from gateway.sync.projects import open_user_data, require_project


class DeviceStatus(StrEnum):
    UP_TO_DATE = "UP_TO_DATE"
    PENDING = "PENDING"  # changes wait in either direction
    STALE = "STALE"  # behind, and its last sync is older than the stale threshold
    OFFLINE = "OFFLINE"  # not seen for the offline threshold


@dataclass(frozen=True, slots=True)
class HealthRules:
    stale_seconds: float = 3600.0
    offline_seconds: float = 86400.0


def status_of(
    *,
    last_seen: datetime,
    last_sync: datetime | None,
    pending_up: int | None,
    pending_down: int,
    now: datetime,
    rules: HealthRules,
) -> DeviceStatus:
    if (now - last_seen).total_seconds() > rules.offline_seconds:
        return DeviceStatus.OFFLINE
    behind = pending_down > 0 or (pending_up or 0) > 0
    if behind and (last_sync is None or (now - last_sync).total_seconds() > rules.stale_seconds):
        return DeviceStatus.STALE
    return DeviceStatus.PENDING if behind else DeviceStatus.UP_TO_DATE


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    project: str
    device_id: str
    names: list[str]
    device_type: str | None
    version: str | None
    owner: str
    pending_up: int | None
    first_seen: datetime
    last_seen: datetime
    pending_down: int = 0
    last_sync: datetime | None = None
    status: DeviceStatus = DeviceStatus.UP_TO_DATE


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


async def report_device(
    db: Database,
    principal: Principal,
    project: str,
    device_id: str,
    *,
    user: str | None = None,
    name: str | None = None,
    device_type: str | None = None,
    version: str | None = None,
    pending_up: int | None = None,
    rules: HealthRules = HealthRules(),
    events: Events = NO_EVENTS,
) -> DeviceInfo:
    """A heartbeat of ``user``'s device (omitted: the caller's): its name, type, version and
    how many changes wait to be sent. Answers with the device's health as it now is."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        await touch_device(
            session,
            data.project_id,
            data.user,
            device_id,
            name=name,
            device_type=device_type,
            version=version,
            pending_up=pending_up,
        )
        await session.flush()
        found = await device_health(
            session, project, data.project_id, owners=[data.user], rules=rules, device_id=device_id
        )
    await events.status_changed(project)
    return found[0]


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
    events: Events = NO_EVENTS,
) -> SyncEventInfo:
    """A sync of ``user``'s device with another service (CSPro's Dropbox example)."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        device = await touch_device(
            session, data.project_id, data.user, device_id, name=device_name
        )
        event = record_event(
            session,
            device,
            username=principal.user_id,
            direction=direction,
            universe=universe,
            partial=partial,
            device_name=device_name,
        )
        await session.flush()
        recorded = _event(event)
    await events.status_changed(project)
    return recorded


async def list_devices(
    db: Database,
    principal: Principal,
    project: str,
    *,
    rules: HealthRules = HealthRules(),
    status: DeviceStatus | None = None,
) -> list[DeviceInfo]:
    """The devices you may see, with what is pending both ways and their status."""
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        devices = await device_health(session, project, found, owners=visible, rules=rules)
    return [d for d in devices if status is None or d.status is status]


async def project_devices(
    db: Database, project: str, *, rules: HealthRules
) -> tuple[int, list[DeviceInfo]] | None:
    """Every device of a project with its health, for the status feed that serves all its
    dashboards (each subscriber keeps what it may see); None when the project is gone."""
    async with db.session() as session:
        found = await session.scalar(select(Project).where(Project.code == project))
        if found is None or found.id is None:
            return None
        return found.id, await device_health(session, project, found.id, owners=None, rules=rules)


async def device_health(
    session: AsyncSession,
    project: str,
    project_id: int,
    *,
    owners: Collection[str] | None,
    rules: HealthRules,
    device_id: str | None = None,
) -> list[DeviceInfo]:
    """The devices of ``owners`` (None: everyone's; only ``device_id`` when given) by owner and
    deviceId, with what is pending both ways and their status: three queries however many
    devices."""
    now = utcnow()
    query = (
        select(Device)
        .where(Device.project_id == project_id)
        .order_by(Device.owner_id, Device.device_id)
    )
    last_sync_query = (
        select(SyncEvent.user_id, SyncEvent.device_id, func.max(SyncEvent.time))
        .where(SyncEvent.project_id == project_id)
        .group_by(SyncEvent.user_id, SyncEvent.device_id)
    )
    if owners is not None:
        query = query.where(Device.owner_id.in_(owners))  # type: ignore[attr-defined]
        last_sync_query = last_sync_query.where(SyncEvent.user_id.in_(owners))  # type: ignore[attr-defined]
    if device_id is not None:
        query = query.where(Device.device_id == device_id)
        last_sync_query = last_sync_query.where(SyncEvent.device_id == device_id)
    devices = (await session.scalars(query)).all()
    last_syncs = {(user, dev): last for user, dev, last in await session.execute(last_sync_query)}
    pending = await pending_counts(session, project_id, owners)
    infos = []
    for device in devices:
        key = (device.owner_id, device.device_id)
        pending_down = pending.get(key, 0)
        last_sync = last_syncs.get(key)
        health = status_of(
            last_seen=device.last_seen,
            last_sync=last_sync,
            pending_up=device.pending_up,
            pending_down=pending_down,
            now=now,
            rules=rules,
        )
        infos.append(
            _device(project, device, pending_down=pending_down, last_sync=last_sync, status=health)
        )
    return infos


async def get_device(
    db: Database,
    principal: Principal,
    project: str,
    device_id: str,
    *,
    user: str | None = None,
    rules: HealthRules = HealthRules(),
) -> DeviceInfo | None:
    """``user``'s device (omitted: yours) with its health; None when that user has none of
    this id."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found = await device_health(
            session, project, data.project_id, owners=[data.user], rules=rules, device_id=device_id
        )
    return found[0] if found else None


async def cases_pending_sync(
    db: Database,
    principal: Principal,
    project: str,
    device_name: str,
    *,
    user: str | None = None,
    first: int = 50,
    after: str | None = None,
) -> tuple[list[tuple[str, PendingCase]], bool]:
    """CSPro's cases pending synchronization towards ``user``'s device known by
    ``device_name``: (cursor, case) pairs by record, and whether more follow."""
    keyset.check_first(first)
    async with db.session() as session:
        device = await _named_device(session, principal, project, user, device_name)
        query = pending_query(device.project_id, device).order_by(Record.id).limit(first + 1)
        if after is not None:
            query = query.where(Record.id > keyset.decode(after, "c"))  # type: ignore[operator]
        rows = (await session.execute(query)).all()
    cases = [(keyset.encode(r.id or 0, "c"), _case(r, table)) for r, table in rows[:first]]
    return cases, len(rows) > first


async def pending_count(
    db: Database, principal: Principal, project: str, device_name: str, user: str | None = None
) -> int:
    async with db.session() as session:
        device = await _named_device(session, principal, project, user, device_name)
        return await count_pending(session, device.project_id, device)


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case: PendingCase
    sync_history: list[SyncEventInfo]


async def case_status(
    db: Database,
    principal: Principal,
    project: str,
    key: str,
    device_name: str,
    user: str | None = None,
) -> CaseStatus:
    """A case of ``user``'s data and the exchange in which its current version reached or came
    from the device (empty while it is pending)."""
    async with db.session() as session:
        device = await _named_device(session, principal, project, user, device_name)
        found = device.project_id
        record = await session.scalar(
            select(Record)
            .where(
                Record.project_id == found,
                Record.user_id == device.owner_id,
                Record.record_key == key,
            )
            .order_by(Record.table_id)
            .limit(1)
        )
        if record is None:
            raise NotFound(f"no case with key {key!r}", field="key")
        table = await session.scalar(
            select(ProjectTable.name).where(ProjectTable.id == record.table_id)
        )
        pending = await session.scalar(
            pending_query(found, device).where(Record.id == record.id).with_only_columns(Record.id)
        )
        history: list[SyncEventInfo] = []
        if pending is None:
            # The put that brought it from the device, or the first get after it changed.
            direction = Direction.PUT if record.device_id == device.device_id else Direction.GET
            event = await session.scalar(
                _device_events(device)
                .where(SyncEvent.direction == direction.value, SyncEvent.time >= record.updated_at)
                .order_by(SyncEvent.id)
                .limit(1)
            )
            history = [_event(event)] if event is not None else []
    return CaseStatus(_case(record, table or ""), history)


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
            query = query.where(SyncEvent.id < keyset.decode(after, "e"))  # type: ignore[operator]
        rows = (
            await session.scalars(
                query.order_by(SyncEvent.id.desc()).limit(first + 1)  # type: ignore[union-attr]
            )
        ).all()
    return HistoryPage([_event(e) for e in rows[:first]], has_next_page=len(rows) > first)


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


async def sync_services(db: Database, principal: Principal, project: str) -> list[SyncService]:
    """Each device you may see that synced, with every name it had and its first and last
    sync."""
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
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


async def viewers(db: Database, principal: Principal, project: str) -> tuple[int, set[str] | None]:
    """The project's id, and whose devices ``principal`` may see there (None: all); the project
    must exist and the caller reach it."""
    async with db.session() as session:
        return await _scope(session, principal, project)


async def _scope(
    session: AsyncSession, principal: Principal, project: str
) -> tuple[int, set[str] | None]:
    found = await require_project(session, project)
    assert found.id is not None
    return found.id, await visible_users(session, principal, found)


async def _events(
    session: AsyncSession,
    principal: Principal,
    project: str,
    device_name: str | None,
    user: str | None,
) -> Select[tuple[SyncEvent]]:
    if device_name is not None:
        return _device_events(await _named_device(session, principal, project, user, device_name))
    if user is not None:
        data = await open_user_data(session, principal, project, user)
        return select(SyncEvent).where(
            SyncEvent.project_id == data.project_id, SyncEvent.user_id == data.user
        )
    project_id, visible = await _scope(session, principal, project)
    query = select(SyncEvent).where(SyncEvent.project_id == project_id)
    if visible is not None:
        query = query.where(SyncEvent.user_id.in_(visible))  # type: ignore[attr-defined]
    return query


def _device_events(device: Device) -> Select[tuple[SyncEvent]]:
    return select(SyncEvent).where(
        SyncEvent.project_id == device.project_id,
        SyncEvent.user_id == device.owner_id,
        SyncEvent.device_id == device.device_id,
    )


async def _named_device(
    session: AsyncSession,
    principal: Principal,
    project: str,
    user: str | None,
    device_name: str,
) -> Device:
    """``user``'s device (omitted: the caller's) known by ``device_name``: the device of that
    id, else the one that has had that name."""
    data = await open_user_data(session, principal, project, user)
    devices = (
        await session.scalars(
            select(Device)
            .where(Device.project_id == data.project_id, Device.owner_id == data.user)
            .order_by(Device.device_id)
        )
    ).all()
    exact = [d for d in devices if d.device_id == device_name]
    named = exact or [d for d in devices if device_name in d.names]
    if len(named) > 1:
        ids = ", ".join(repr(d.device_id) for d in named)
        raise BadUserInput(
            f"several devices are known as {device_name!r}: {ids}; name one by its deviceId",
            field="deviceName",
            candidates=[d.device_id for d in named],
        )
    if not named:
        raise NotFound(f"no device is known as {device_name!r}", field="deviceName")
    return named[0]


def _device(project: str, d: Device, **health: Any) -> DeviceInfo:
    return DeviceInfo(
        project=project,
        device_id=d.device_id,
        names=list(d.names),
        device_type=d.device_type,
        version=d.version,
        owner=d.owner_id,
        pending_up=d.pending_up,
        first_seen=d.first_seen,
        last_seen=d.last_seen,
        **health,
    )


def _case(record: Record, table: str) -> PendingCase:
    return PendingCase(
        key=record.record_key, position=record.position, uuid=dashed(record.record_id),
        table=table, record_id=record.record_id,
    )  # fmt: skip


def _event(e: SyncEvent) -> SyncEventInfo:
    assert e.id is not None
    return SyncEventInfo(
        id=e.id, time=e.time, device_id=e.device_id, device_name=e.device_name,
        username=e.username, user=e.user_id, universe=e.universe,
        direction=Direction(e.direction), partial=e.partial, cursor=keyset.encode(e.id, "e"),
    )  # fmt: skip
