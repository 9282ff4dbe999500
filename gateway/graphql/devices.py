"""Devices: the registry and their health (RegardingWork's devices), reported and watched live."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from gateway.graphql.actions import ProgressInput
from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.live.status import device_status_changes
from gateway.sync import devices as domain
from gateway.sync.pending import acknowledge_progress

DeviceStatus = strawberry.enum(
    domain.DeviceStatus, name="DeviceStatus", description="A device's sync health."
)


@strawberry.type(
    description="A sync client of one user's data: every name it had, its type, version, owner. "
    "The same deviceId under another user is another device."
)
class Device(Node):
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

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.project, self.owner, self.device_id)

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


USER_HELP = "user: whose device (omitted: yours); a device is known within its user's devices only."
NAMED_HELP = (
    "deviceName names one of user's devices (omitted user: yours): its deviceId, or any name "
    "it has had; a name several of them have had is BAD_USER_INPUT listing their deviceIds."
)


def health_rules(info: Info) -> domain.HealthRules:
    settings = info.context.services.settings
    return domain.HealthRules(settings.device_stale_seconds, settings.device_offline_seconds)


@strawberry.type
class DeviceQuery:
    @strawberry.field(description="The devices of a project you may see, by deviceId.")
    async def devices(
        self, info: Info, project: str, status: DeviceStatus | None = None
    ) -> list[Device]:
        found = await domain.list_devices(
            info.context.db,
            info.context.principal,
            project,
            rules=health_rules(info),
            status=status,
        )
        return [Device.from_domain(d) for d in found]

    @strawberry.field(
        description=f"One device of a user; null when that user has none of this id. {USER_HELP}"
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
            rules=health_rules(info),
        )
        return Device.from_domain(found) if found else None


@strawberry.type
class DeviceMutation:
    @strawberry.mutation(
        description="A device's heartbeat: a name (every name is kept), type, version and how "
        f"many local changes wait to be sent. Answers with the device's health. {USER_HELP}"
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
            rules=health_rules(info),
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
