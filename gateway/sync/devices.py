"""Devices and their sync events (CSPro's sync history, RegardingWork's devices).

A device is registered the first time an exchange names it (a write or a read with its
deviceId) or when it reports itself. Every write from a device records a PUT; every read that
delivers actions to a device records a GET; another service's syncs are reported with
``record_sync_event``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import authorize_user_data, target_user, visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Device, SyncEvent
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, NotFound
from gateway.sync.projects import require_project

MAX_TEXT = 255
MAX_PAGE = 500


class Direction(StrEnum):
    PUT = "PUT"
    GET = "GET"


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


def display_name(device: Device) -> str:
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


async def record_get(
    db: Database,
    principal: Principal,
    project_id: int,
    user: str,
    device_id: str,
    *,
    delivered: bool,
    partial: bool,
    universe: str,
) -> None:
    """After a read by a device: it was seen, and a GET if actions reached it."""
    for attempt in (1, 2):
        try:
            async with db.transaction() as session:
                device = await touch_device(session, project_id, device_id, user)
                if delivered:
                    await record_event(
                        session, device, username=principal.user_id, user=user,
                        direction=Direction.GET, universe=universe, partial=partial,
                    )  # fmt: skip
            return
        except IntegrityError:  # the device's first two reads raced to register it
            if attempt == 2:
                raise


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
        found = await require_project(session, project)
        assert found.id is not None
        owner = target_user(principal, user)
        await authorize_user_data(session, principal, found.id, owner)
        device = await touch_device(
            session, found.id, device_id, owner,
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
        found = await require_project(session, project)
        assert found.id is not None
        owner = target_user(principal, user)
        await authorize_user_data(session, principal, found.id, owner)
        device = await touch_device(session, found.id, device_id, owner, name=device_name)
        await record_event(
            session, device, username=principal.user_id, user=owner, direction=direction,
            universe=universe, partial=partial, device_name=device_name,
        )  # fmt: skip
        await session.flush()
        event = await session.scalar(
            select(SyncEvent)
            .where(SyncEvent.project_id == found.id, SyncEvent.device_id == device_id)
            .order_by(SyncEvent.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
        assert event is not None
        return _event(event)


async def list_devices(db: Database, principal: Principal, project: str) -> list[DeviceInfo]:
    async with db.session() as session:
        found, visible = await _scope(session, principal, project)
        query = select(Device).where(Device.project_id == found).order_by(Device.device_id)
        if visible is not None:
            query = query.where(Device.owner_id.in_(visible))  # type: ignore[attr-defined]
        return [_device(project, d) for d in await session.scalars(query)]


async def get_device(
    db: Database, principal: Principal, device_id: str, project: str
) -> DeviceInfo | None:
    return next(
        (d for d in await list_devices(db, principal, project) if d.device_id == device_id),
        None,
    )


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
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    async with db.session() as session:
        query = await _events(session, principal, project, device_name, direction)
        if after is not None:
            query = query.where(SyncEvent.id < _decode(after))  # type: ignore[operator]
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
            device_names=[display_name(devices[device_id])]
            if not devices[device_id].names
            else list(devices[device_id].names),
            first_sync_time=_utc(first),
            last_sync_time=_utc(last),
        )
        for device_id, first, last in spans
        if device_id in devices
    ]


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
        devices = await session.scalars(select(Device).where(Device.project_id == project_id))
        named = [d.device_id for d in devices if device_name in (d.names or [d.device_id])]
        if not named:
            raise NotFound(f"no device is known as {device_name!r}", field="deviceName")
        query = query.where(SyncEvent.device_id.in_(named))  # type: ignore[attr-defined]
    return query


def _check_text(field: str, value: str) -> None:
    if not value.strip() or len(value) > MAX_TEXT:
        raise BadUserInput(f"{field} must be 1 to {MAX_TEXT} characters", field=field)


def _encode(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"e:{event_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        kind, _, value = raw.partition(":")
        if kind != "e":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadUserInput(f"invalid cursor {cursor!r}", field="after") from exc


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _device(project: str, d: Device) -> DeviceInfo:
    return DeviceInfo(
        project=project, device_id=d.device_id, names=list(d.names), device_type=d.device_type,
        version=d.version, owner=d.owner_id, pending_up=d.pending_up,
        first_seen=d.first_seen, last_seen=d.last_seen,
    )  # fmt: skip


def _event(e: SyncEvent) -> SyncEventInfo:
    assert e.id is not None
    return SyncEventInfo(
        id=e.id, time=e.time, device_id=e.device_id, device_name=e.device_name,
        username=e.username, user=e.user_id, universe=e.universe,
        direction=Direction(e.direction), partial=e.partial, cursor=_encode(e.id),
    )  # fmt: skip
