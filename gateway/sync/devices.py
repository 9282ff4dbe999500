"""Devices and their sync events (CSPro's sync history, RegardingWork's devices).

A device is registered the first time an exchange names it (a write or a read with its
deviceId) or when it reports itself. Every write from a device records a PUT; every read that
delivers actions to a device records a GET; another service's syncs are reported with
``record_sync_event``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Device, ProjectTable, Record, SyncEvent
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, NotFound
from gateway.sync import keyset
from gateway.sync.pending import (
    PendingCase,
    count_pending,
    dashed,
    pending_counts,
    pending_query,
)
from gateway.sync.projects import open_user_data, require_project

MAX_TEXT = 255


class Direction(StrEnum):
    PUT = "PUT"
    GET = "GET"


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
    device_id: str
    device_names: list[str]
    first_sync_time: datetime
    last_sync_time: datetime


def universe(include: Sequence[str] | None, exclude: Sequence[str] | None) -> str:
    """The exchange's filter as text; empty when it covered everything."""
    parts = []
    if include:
        parts.append("includeTables=" + ",".join(include))
    if exclude:
        parts.append("excludeTables=" + ",".join(exclude))
    return "; ".join(parts)


def display_name(device: Device | DeviceInfo) -> str:
    """A device that never reported a name is known by its deviceId."""
    return device.names[-1] if device.names else device.device_id


async def touch_device(
    session: AsyncSession,
    project_id: int,
    device_id: str,
    owner: str,
    *,
    name: str | None = None,
    device_type: str | None = None,
    version: str | None = None,
    pending_up: int | None = None,
) -> Device:
    """Register the device on first sight, or note that it was seen (and what it reports)."""
    _check_text("deviceId", device_id)
    for field, value in (("name", name), ("type", device_type), ("version", version)):
        if value is not None:
            _check_text(field, value)
    if pending_up is not None and pending_up < 0:
        raise BadUserInput("pendingUp cannot be negative", field="pendingUp")
    now = utcnow()
    device = await session.get(Device, (project_id, device_id), with_for_update=True)
    if device is None:
        device = Device(
            project_id=project_id, device_id=device_id, owner_id=owner, names=[],
            first_seen=now, last_seen=now,
        )  # fmt: skip
        session.add(device)
    device.last_seen = now
    if name is not None and name not in device.names:
        device.names = [*device.names, name]
    if device_type is not None:
        device.device_type = device_type
    if version is not None:
        device.version = version
    if pending_up is not None:
        device.pending_up = pending_up
    return device


async def record_event(
    session: AsyncSession,
    device: Device,
    *,
    username: str,
    user: str,
    direction: Direction,
    universe: str = "",
    partial: bool = False,
    device_name: str | None = None,
) -> None:
    session.add(
        SyncEvent(
            project_id=device.project_id,
            device_id=device.device_id,
            device_name=device_name or display_name(device),
            username=username,
            user_id=user,
            direction=direction.value,
            universe=universe,
            partial=partial,
        )
    )


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
) -> DeviceInfo:
    """A device's heartbeat: its name, type, version and how many changes wait to be sent."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, owner = data.project_id, data.user
        device = await touch_device(
            session, found_id, device_id, owner,
            name=name, device_type=device_type, version=version, pending_up=pending_up,
        )  # fmt: skip
        await session.flush()
        return _device(project, device)


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
) -> SyncEventInfo:
    """A sync with another service, reported by the device (CSPro's Dropbox example)."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, owner = data.project_id, data.user
        device = await touch_device(session, found_id, device_id, owner, name=device_name)
        await record_event(
            session, device, username=principal.user_id, user=owner, direction=direction,
            universe=universe, partial=partial, device_name=device_name,
        )  # fmt: skip
        await session.flush()
        event = await session.scalar(
            select(SyncEvent)
            .where(SyncEvent.project_id == found_id, SyncEvent.device_id == device_id)
            .order_by(SyncEvent.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
        assert event is not None
        return _event(event)


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


async def device_health(
    session: AsyncSession,
    project: str,
    project_id: int,
    *,
    owners: Collection[str] | None,
    rules: HealthRules,
) -> list[DeviceInfo]:
    """The devices of ``owners`` (None: everyone's) by deviceId, with what is pending both ways
    and their status: three queries however many devices."""
    now = utcnow()
    query = select(Device).where(Device.project_id == project_id).order_by(Device.device_id)
    if owners is not None:
        query = query.where(Device.owner_id.in_(owners))  # type: ignore[attr-defined]
    devices = (await session.scalars(query)).all()
    last_sync_query = (
        select(SyncEvent.device_id, func.max(SyncEvent.time))
        .where(SyncEvent.project_id == project_id)
        .group_by(SyncEvent.device_id)
    )
    if owners is not None:
        last_sync_query = last_sync_query.where(SyncEvent.user_id.in_(owners))  # type: ignore[attr-defined]
    last_syncs = dict((await session.execute(last_sync_query)).all())
    pending = await pending_counts(session, project_id, owners)
    infos = []
    for device in devices:
        pending_down = pending.get(device.device_id, 0)
        last_sync = last_syncs.get(device.device_id)
        health = status_of(
            last_seen=device.last_seen, last_sync=last_sync, pending_up=device.pending_up,
            pending_down=pending_down, now=now, rules=rules,
        )  # fmt: skip
        infos.append(
            _device(project, device, pending_down=pending_down, last_sync=last_sync, status=health)
        )
    return infos


async def get_device(
    db: Database,
    principal: Principal,
    device_id: str,
    project: str,
    *,
    rules: HealthRules = HealthRules(),
) -> DeviceInfo | None:
    return next(
        (
            d
            for d in await list_devices(db, principal, project, rules=rules)
            if d.device_id == device_id
        ),
        None,
    )


async def cases_pending_sync(
    db: Database,
    principal: Principal,
    project: str,
    device_name: str,
    *,
    first: int = 50,
    after: str | None = None,
) -> tuple[list[tuple[str, PendingCase]], bool]:
    """CSPro's cases pending synchronization towards the device known by ``device_name``:
    (cursor, case) pairs by record, and whether more follow."""
    keyset.check_first(first)
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        device = await _named_device(session, found, device_name, visible)
        query = pending_query(found, device).order_by(Record.id).limit(first + 1)
        if after is not None:
            query = query.where(Record.id > keyset.decode(after, "c"))  # type: ignore[operator]
        rows = (await session.execute(query)).all()
    cases = [(keyset.encode(r.id or 0, "c"), _case(r, table)) for r, table in rows[:first]]
    return cases, len(rows) > first


async def pending_count(db: Database, principal: Principal, project: str, device_name: str) -> int:
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        device = await _named_device(session, found, device_name, visible)
        return await count_pending(session, found, device)


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case: PendingCase
    sync_history: list[SyncEventInfo]


async def case_status(
    db: Database, principal: Principal, project: str, key: str, device_name: str
) -> CaseStatus:
    """A case's current version and the exchange in which it reached or came from the device
    (empty while it is pending)."""
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        device = await _named_device(session, found, device_name, visible)
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
                select(SyncEvent)
                .where(
                    SyncEvent.project_id == found,
                    SyncEvent.device_id == device.device_id,
                    SyncEvent.direction == direction.value,
                    SyncEvent.time >= record.updated_at,
                )
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
    direction: Direction | None = None,
    first: int = 50,
    after: str | None = None,
) -> HistoryPage:
    """Sync events, newest first, optionally of the device known by ``device_name``."""
    keyset.check_first(first)
    async with db.session() as session:
        query = await _events(session, principal, project, device_name, direction)
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
) -> SyncEventInfo | None:
    """CSPro's summary: the latest put (or get), of one device when it is named."""
    page = await sync_history(
        db, principal, project, device_name=device_name, direction=direction, first=1
    )
    return page.events[0] if page.events else None


async def sync_services(db: Database, principal: Principal, project: str) -> list[SyncService]:
    """Each device that synced, with every name it had and its first and last sync."""
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        query = (
            select(SyncEvent.device_id, func.min(SyncEvent.time), func.max(SyncEvent.time))
            .where(SyncEvent.project_id == found)
            .group_by(SyncEvent.device_id)
            .order_by(SyncEvent.device_id)
        )
        if visible is not None:
            query = query.where(SyncEvent.user_id.in_(visible))  # type: ignore[attr-defined]
        spans = (await session.execute(query)).all()
        devices = {
            d.device_id: d
            for d in await session.scalars(select(Device).where(Device.project_id == found))
        }
    return [
        SyncService(
            device_id=device_id,
            device_names=list(devices[device_id].names) or [device_id],
            first_sync_time=first,
            last_sync_time=last,
        )
        for device_id, first, last in spans
        if device_id in devices
    ]


async def viewers(db: Database, principal: Principal, project: str) -> set[str] | None:
    """Whose devices ``principal`` may see in the project (None: all); the project must exist."""
    async with db.session() as session:
        return (await _scope(session, principal, project))[1]


async def _scope(
    session: AsyncSession, principal: Principal, project: str
) -> tuple[int, set[str] | None]:
    found = await require_project(session, project)
    assert found.id is not None
    return found.id, await visible_users(session, principal, found.id)


async def _events(
    session: AsyncSession,
    principal: Principal,
    project: str,
    device_name: str | None,
    direction: Direction | None,
) -> Select[tuple[SyncEvent]]:
    project_id, visible = await _scope(session, principal, project)
    query = select(SyncEvent).where(SyncEvent.project_id == project_id)
    if visible is not None:
        query = query.where(SyncEvent.user_id.in_(visible))  # type: ignore[attr-defined]
    if direction is not None:
        query = query.where(SyncEvent.direction == direction.value)
    if device_name is not None:
        device = await _named_device(session, project_id, device_name, visible)
        query = query.where(SyncEvent.device_id == device.device_id)
    return query


async def _named_device(
    session: AsyncSession, project_id: int, device_name: str, visible: set[str] | None
) -> Device:
    """The device known by ``device_name``: any name it has had, or its deviceId."""
    query = select(Device).where(Device.project_id == project_id).order_by(Device.last_seen.desc())  # type: ignore[attr-defined]
    if visible is not None:
        query = query.where(Device.owner_id.in_(visible))  # type: ignore[attr-defined]
    for device in await session.scalars(query):
        if device_name in device.names or device_name == device.device_id:
            return device
    raise NotFound(f"no device is known as {device_name!r}", field="deviceName")


def _check_text(field: str, value: str) -> None:
    if not value.strip() or len(value) > MAX_TEXT:
        raise BadUserInput(f"{field} must be 1 to {MAX_TEXT} characters", field=field)


def _device(project: str, d: Device, **health: Any) -> DeviceInfo:
    return DeviceInfo(
        project=project, device_id=d.device_id, names=list(d.names), device_type=d.device_type,
        version=d.version, owner=d.owner_id, pending_up=d.pending_up,
        first_seen=d.first_seen, last_seen=d.last_seen, **health,
    )  # fmt: skip


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
