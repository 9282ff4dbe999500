"""Devices: the registry and their health (RegardingWork's devices).

A device is (project, user, deviceId): a sync client of one user's data. It is registered the
first time an exchange names it (a write or a read with its deviceId) or when it reports
itself (``gateway/sync/exchange.py`` keeps that bookkeeping). Its health counts what is pending
both ways and how long ago it was seen and synced.

``deviceName`` arguments name a device of one user (the ``user`` argument, omitted: the
caller): an exact deviceId wins, else any name the device has had; a name several of the
user's devices have had is ``BAD_USER_INPUT`` naming their deviceIds (``named_device``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Device, Project, SyncEvent
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, NotFound
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.exchange import touch_device
from gateway.sync.pending import pending_counts
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
        changes = Changes(statuses=[project])
        await events.staged(session, changes)
    await events.committed(changes)
    return found[0]


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
        found, visible = await project_scope(session, principal, project)
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
        select(*Device.__table__.c)  # type: ignore[attr-defined]
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
    devices = (await session.execute(query)).all()
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
            to_device(
                project, device, pending_down=pending_down, last_sync=last_sync, status=health
            )
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


async def viewers(db: Database, principal: Principal, project: str) -> tuple[int, set[str] | None]:
    """The project's id, and whose devices ``principal`` may see there (None: all); the project
    must exist and the caller reach it."""
    async with db.session() as session:
        return await project_scope(session, principal, project)


async def project_scope(
    session: AsyncSession, principal: Principal, project: str
) -> tuple[int, set[str] | None]:
    found = await require_project(session, project)
    assert found.id is not None
    return found.id, await visible_users(session, principal, found)


async def named_device(
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


def to_device(project: str, d: Device | Any, **health: Any) -> DeviceInfo:
    """``d`` is a Device or a row of its columns."""
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
