"""Devices and sync history (CSPro's getSyncStatus, RegardingWork's devices)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.pagination import PageInfo
from gateway.sync import devices as domain

SyncDirection = strawberry.enum(
    domain.Direction, name="SyncDirection", description="PUT: device to gateway; GET: back."
)


@strawberry.type(description="A sync client: every name it had, its type, version, owner.")
class Device:
    project: str
    device_id: str
    device_names: list[str]
    device_type: str | None
    version: str | None
    owner: str = strawberry.field(description="The user whose data it syncs.")
    pending_up: int | None = strawberry.field(
        description="Changes the device last reported as waiting to be sent."
    )
    first_seen: datetime
    last_seen: datetime

    @classmethod
    def from_domain(cls, d: domain.DeviceInfo) -> Device:
        return cls(
            project=d.project, device_id=d.device_id, device_names=d.names,
            device_type=d.device_type, version=d.version, owner=d.owner,
            pending_up=d.pending_up, first_seen=d.first_seen, last_seen=d.last_seen,
        )  # fmt: skip


@strawberry.type(description="One put or get between a device and a service (CSPro).")
class SyncEvent:
    time: datetime
    device_id: str
    device_name: str
    username: str = strawberry.field(description="Who synced.")
    user: str = strawberry.field(description="Whose data.")
    universe: str = strawberry.field(description="The exchange's filter; empty for all.")
    direction: SyncDirection
    partial: bool = strawberry.field(description="The device was not brought fully up to date.")

    @classmethod
    def from_domain(cls, e: domain.SyncEventInfo) -> SyncEvent:
        return cls(
            time=e.time, device_id=e.device_id, device_name=e.device_name,
            username=e.username, user=e.user, universe=e.universe,
            direction=e.direction, partial=e.partial,
        )  # fmt: skip


@strawberry.type
class SyncEventEdge:
    cursor: str
    node: SyncEvent


@strawberry.type
class SyncEventConnection:
    edges: list[SyncEventEdge]
    page_info: PageInfo


@strawberry.type(description="CSPro's summary: the latest put and get.")
class SyncSummary:
    last_put: SyncEvent | None
    last_get: SyncEvent | None


@strawberry.type(name="SyncService", description="A device that synced, with every name it had.")
class SyncServiceInfo:
    device_id: str
    device_names: list[str]
    first_sync_time: datetime
    last_sync_time: datetime


@strawberry.type
class DeviceQuery:
    @strawberry.field(description="The devices of a project you may see, by deviceId.")
    async def devices(self, info: Info, project: str) -> list[Device]:
        found = await domain.list_devices(info.context.db, info.context.principal, project)
        return [Device.from_domain(d) for d in found]

    @strawberry.field(description="One device; null when there is none (or not yours).")
    async def device(self, info: Info, project: str, device_id: str) -> Device | None:
        found = await domain.get_device(info.context.db, info.context.principal, device_id, project)
        return Device.from_domain(found) if found else None

    @strawberry.field(
        description="The latest put and get, of one device when deviceName (any name it had, "
        "or its deviceId) is given."
    )
    async def sync_summary(
        self, info: Info, project: str, device_name: str | None = None
    ) -> SyncSummary:
        db, principal = info.context.db, info.context.principal
        put = await domain.last_event(db, principal, project, domain.Direction.PUT, device_name)
        get = await domain.last_event(db, principal, project, domain.Direction.GET, device_name)
        return SyncSummary(
            last_put=SyncEvent.from_domain(put) if put else None,
            last_get=SyncEvent.from_domain(get) if get else None,
        )

    @strawberry.field(description="Sync events, newest first.")
    async def sync_history(
        self,
        info: Info,
        project: str,
        device_name: str | None = None,
        direction: SyncDirection | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> SyncEventConnection:
        page = await domain.sync_history(
            info.context.db, info.context.principal, project,
            device_name=device_name, direction=direction, first=first, after=after,
        )  # fmt: skip
        edges = [SyncEventEdge(cursor=e.cursor, node=SyncEvent.from_domain(e)) for e in page.events]
        return SyncEventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    @strawberry.field(description="Each device that synced: its names, first and last sync.")
    async def sync_services(self, info: Info, project: str) -> list[SyncServiceInfo]:
        services = await domain.sync_services(info.context.db, info.context.principal, project)
        return [
            SyncServiceInfo(
                device_id=s.device_id,
                device_names=s.device_names,
                first_sync_time=s.first_sync_time,
                last_sync_time=s.last_sync_time,
            )
            for s in services
        ]


@strawberry.type
class DeviceMutation:
    @strawberry.mutation(
        description="A device's heartbeat: a name (every name is kept), type, version and how "
        "many local changes wait to be sent."
    )
    async def report_device(
        self,
        info: Info,
        project: str,
        device_id: str,
        name: str | None = None,
        type: str | None = None,
        version: str | None = None,
        pending_up: int | None = None,
        user: str | None = None,
    ) -> Device:
        device = await domain.report_device(
            info.context.db, info.context.principal, project, device_id, user=user,
            name=name, device_type=type, version=version, pending_up=pending_up,
        )  # fmt: skip
        return Device.from_domain(device)

    @strawberry.mutation(description="Record a sync with another service (CSPro's Dropbox).")
    async def record_sync_event(
        self,
        info: Info,
        project: str,
        device_id: str,
        direction: SyncDirection,
        device_name: str | None = None,
        universe: str = "",
        partial: bool = False,
        user: str | None = None,
    ) -> SyncEvent:
        event = await domain.record_sync_event(
            info.context.db, info.context.principal, project, device_id,
            direction=direction, device_name=device_name, universe=universe,
            partial=partial, user=user,
        )  # fmt: skip
        return SyncEvent.from_domain(event)
