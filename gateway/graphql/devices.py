"""Devices and sync history (CSPro's getSyncStatus, RegardingWork's devices)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from gateway.graphql.actions import ProgressInput
from gateway.graphql.context import Info
from gateway.graphql.pagination import Connection
from gateway.graphql.scalars import Long
from gateway.live.status import device_status_changes
from gateway.sync import cases, history
from gateway.sync import devices as domain
from gateway.sync.exchange import Direction
from gateway.sync.pending import acknowledge_progress

DeviceStatus = strawberry.enum(
    domain.DeviceStatus, name="DeviceStatus", description="A device's sync health."
)
SyncDirection = strawberry.enum(
    Direction, name="SyncDirection", description="PUT: device to gateway; GET: back."
)


@strawberry.type(
    description="A sync client of one user's data: every name it had, its type, version, owner. "
    "The same deviceId under another user is another device."
)
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
    pending_down: int = strawberry.field(
        description="Records whose current version has not reached the device."
    )
    status: DeviceStatus
    first_seen: datetime
    last_seen: datetime
    last_sync: datetime | None = strawberry.field(description="Its latest put or get.")

    @classmethod
    def from_domain(cls, d: domain.DeviceInfo) -> Device:
        return cls(
            project=d.project,
            device_id=d.device_id,
            device_names=d.names,
            device_type=d.device_type,
            version=d.version,
            owner=d.owner,
            pending_up=d.pending_up,
            pending_down=d.pending_down,
            status=d.status,
            first_seen=d.first_seen,
            last_seen=d.last_seen,
            last_sync=d.last_sync,
        )


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
    def from_domain(cls, e: history.SyncEventInfo) -> SyncEvent:
        return cls(
            time=e.time,
            device_id=e.device_id,
            device_name=e.device_name,
            username=e.username,
            user=e.user,
            universe=e.universe,
            direction=e.direction,
            partial=e.partial,
        )


@strawberry.type(description="CSPro's summary: the latest put and get.")
class SyncSummary:
    last_put: SyncEvent | None
    last_get: SyncEvent | None
    cases_pending_sync: int | None = strawberry.field(
        description="With a deviceName: records whose current version has not reached it."
    )


@strawberry.type(description="A case (record) whose current version has not reached a device.")
class PendingCase:
    key: str
    position: Long = strawberry.field(description="Log id of its last change.")
    uuid: str


@strawberry.type(description="A case's current version and the exchange that carried it.")
class CaseStatus:
    key: str
    position: Long
    uuid: str
    sync_history: list[SyncEvent] = strawberry.field(
        description="The put or get in which the current version was exchanged with the "
        "device; empty while it is pending."
    )


def _pending_case(case: cases.PendingCase) -> PendingCase:
    return PendingCase(key=case.key, position=Long(case.position), uuid=case.uuid)


_USER = "user: whose device (omitted: yours); a device is known within its user's devices only."
_NAMED = (
    "deviceName names one of user's devices (omitted user: yours): its deviceId, or any name "
    "it has had; a name several of them have had is BAD_USER_INPUT listing their deviceIds."
)


def _rules(info: Info) -> domain.HealthRules:
    settings = info.context.services.settings
    return domain.HealthRules(settings.device_stale_seconds, settings.device_offline_seconds)


@strawberry.type(name="SyncService", description="A device that synced, with every name it had.")
class SyncServiceInfo:
    user: str = strawberry.field(description="Whose data the device syncs.")
    device_id: str
    device_names: list[str]
    first_sync_time: datetime
    last_sync_time: datetime


@strawberry.type
class DeviceQuery:
    @strawberry.field(description="The devices of a project you may see, by deviceId.")
    async def devices(
        self, info: Info, project: str, status: DeviceStatus | None = None
    ) -> list[Device]:
        found = await domain.list_devices(
            info.context.db, info.context.principal, project, rules=_rules(info), status=status
        )
        return [Device.from_domain(d) for d in found]

    @strawberry.field(
        description=f"One device of a user; null when that user has none of this id. {_USER}"
    )
    async def device(
        self, info: Info, project: str, device_id: str, user: str | None = None
    ) -> Device | None:
        found = await domain.get_device(
            info.context.db,
            info.context.principal,
            project,
            device_id,
            user=user,
            rules=_rules(info),
        )
        return Device.from_domain(found) if found else None

    @strawberry.field(
        description="Records whose current version has not reached the device known as "
        f"deviceName (pending towards the device; what waits on it is its pendingUp). {_NAMED}"
    )
    async def cases_pending_sync(
        self,
        info: Info,
        project: str,
        device_name: str,
        user: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[PendingCase]:
        found, more = await cases.cases_pending_sync(
            info.context.db,
            info.context.principal,
            project,
            device_name,
            user=user,
            first=first,
            after=after,
        )
        return Connection.of(((c, _pending_case(case)) for c, case in found), has_next_page=more)

    @strawberry.field(
        description=f"A case's status towards the device known as deviceName. {_NAMED}"
    )
    async def case_status(
        self, info: Info, project: str, key: str, device_name: str, user: str | None = None
    ) -> CaseStatus:
        status = await cases.case_status(
            info.context.db, info.context.principal, project, key, device_name, user
        )
        return CaseStatus(
            key=status.case.key,
            position=Long(status.case.position),
            uuid=status.case.uuid,
            sync_history=[SyncEvent.from_domain(e) for e in status.sync_history],
        )

    @strawberry.field(
        description="The latest put and get: of one device when deviceName is given, else of "
        f"user's devices when user is given, else of every device you may see. {_NAMED}"
    )
    async def sync_summary(
        self, info: Info, project: str, device_name: str | None = None, user: str | None = None
    ) -> SyncSummary:
        db, principal = info.context.db, info.context.principal
        put = await history.last_event(db, principal, project, Direction.PUT, device_name, user)
        get = await history.last_event(db, principal, project, Direction.GET, device_name, user)
        pending = (
            await cases.pending_count(db, principal, project, device_name, user)
            if device_name is not None
            else None
        )
        return SyncSummary(
            last_put=SyncEvent.from_domain(put) if put else None,
            last_get=SyncEvent.from_domain(get) if get else None,
            cases_pending_sync=pending,
        )

    @strawberry.field(
        description="Sync events, newest first: of one device when deviceName is given, else of "
        f"user's devices when user is given, else of every device you may see. {_NAMED}"
    )
    async def sync_history(
        self,
        info: Info,
        project: str,
        device_name: str | None = None,
        user: str | None = None,
        direction: SyncDirection | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[SyncEvent]:
        page = await history.sync_history(
            info.context.db,
            info.context.principal,
            project,
            device_name=device_name,
            user=user,
            direction=direction,
            first=first,
            after=after,
        )
        return Connection.of(
            ((e.cursor, SyncEvent.from_domain(e)) for e in page.events),
            has_next_page=page.has_next_page,
        )

    @strawberry.field(
        description="Each device you may see that synced: its names, first and last sync."
    )
    async def sync_services(self, info: Info, project: str) -> list[SyncServiceInfo]:
        services = await history.sync_services(info.context.db, info.context.principal, project)
        return [
            SyncServiceInfo(
                user=s.user,
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
        f"many local changes wait to be sent. Answers with the device's health. {_USER}"
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
            info.context.db,
            info.context.principal,
            project,
            device_id,
            user=user,
            name=name,
            device_type=type,
            version=version,
            pending_up=pending_up,
            rules=_rules(info),
            events=info.context.services,
        )
        return Device.from_domain(device)

    @strawberry.mutation(
        description="The device states what it has applied (its reads count as received): "
        "what is pending towards it is counted from there."
    )
    async def acknowledge_progress(
        self,
        info: Info,
        project: str,
        device_id: str,
        progress: list[ProgressInput],
        user: str | None = None,
    ) -> bool:
        await acknowledge_progress(
            info.context.db,
            info.context.principal,
            project,
            device_id,
            {p.table: p.cursor for p in progress},
            user,
            events=info.context.services,
        )
        return True

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
        event = await history.record_sync_event(
            info.context.db,
            info.context.principal,
            project,
            device_id,
            direction=direction,
            device_name=device_name,
            universe=universe,
            partial=partial,
            user=user,
            events=info.context.services,
        )
        return SyncEvent.from_domain(event)


@strawberry.type
class DeviceSubscription:
    @strawberry.subscription(
        description="Device health for dashboards: first every device you may see, then each "
        "device whose status changes (computed once per change for all watchers). Ends with "
        "FORBIDDEN when your access to a device shown is withdrawn."
    )
    async def device_status_changed(self, info: Info, project: str) -> AsyncGenerator[Device, None]:
        context = info.context
        with context.subscription_slot():
            async for device in device_status_changes(
                context.services.status_feeds,
                context.db,
                context.services.hub,
                context.principal,
                project,
                context.services.settings.live_poll_seconds,
            ):
                yield Device.from_domain(device)
