"""Devices: the registry and their health (RegardingWork's devices), reported and watched live."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.actions import ProgressInput
from gateway.graphql.arguments import DeviceId, ProjectCode, WhoseDeviceAmongTheirs
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.globalids import KeyPart, Node
from gateway.live.status import device_status_changes
from gateway.sync import devices as domain
from gateway.sync.pending import acknowledge_progress

DeviceStatus = described_enum(
    domain.DeviceStatus,
    name="DeviceStatus",
    description="A device's sync health. How long is too long is the gateway's setting "
    "(GATEWAY_DEVICE_STALE_SECONDS, GATEWAY_DEVICE_OFFLINE_SECONDS).",
    values={
        "UP_TO_DATE": "Nothing waits in either direction.",
        "PENDING": "Changes wait to be sent or received, and it synced recently.",
        "STALE": "Changes wait, and it has not synced for a while (1 hour by default).",
        "OFFLINE": "Not heard from for a long time (1 day by default).",
    },
)


@strawberry.type(
    description="A sync client of one user's data: every name it had, its type, version, owner. "
    "The same deviceId under another user is another device."
)
class Device(Node):
    project: str = strawberry.field(description="The project's code.")
    device_id: str = strawberry.field(
        description="The id the device gave itself (unique among its user's devices)."
    )
    device_names: list[str] = strawberry.field(
        description="Every name it reported, oldest first; its deviceId when it never reported one."
    )
    device_type: str | None = strawberry.field(
        description='Its type as it last reported it, e.g. "android".'
    )
    version: str | None = strawberry.field(description="Its app version as it last reported it.")
    owner: str = strawberry.field(description="The user whose data it syncs.")
    pending_up: int | None = strawberry.field(
        description="Changes the device last reported as waiting to be sent."
    )
    pending_down: int = strawberry.field(
        description="Records whose current version has not reached the device."
    )
    status: DeviceStatus = strawberry.field(description="Its sync health now.")
    first_seen: datetime = strawberry.field(description="When the gateway first heard from it.")
    last_seen: datetime = strawberry.field(
        description="When the gateway last heard from it (a read, a write or a heartbeat)."
    )
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
        self,
        info: Info,
        project: ProjectCode,
        status: Annotated[
            DeviceStatus | None,
            strawberry.argument(description="Only devices in this health (omitted: all)."),
        ] = None,
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
        self,
        info: Info,
        project: ProjectCode,
        device_id: DeviceId,
        user: WhoseDeviceAmongTheirs = None,
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
        project: ProjectCode,
        device_id: DeviceId,
        name: Annotated[
            str | None,
            strawberry.argument(
                description="A name of the device, e.g. its URL or what its user calls it; "
                "every name reported is kept."
            ),
        ] = None,
        type: Annotated[
            str | None, strawberry.argument(description='Its type, e.g. "android", "ios", "web".')
        ] = None,
        version: Annotated[str | None, strawberry.argument(description="Its app version.")] = None,
        pending_up: Annotated[
            int | None,
            strawberry.argument(description="How many local changes wait to be sent (0 or more)."),
        ] = None,
        user: WhoseDeviceAmongTheirs = None,
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
        project: ProjectCode,
        device_id: DeviceId,
        progress: Annotated[
            list[ProgressInput],
            strawberry.argument(
                description="Per table, the progress of the last read the device has applied."
            ),
        ],
        user: WhoseDeviceAmongTheirs = None,
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
    async def device_status_changed(
        self,
        info: Info,
        project: ProjectCode,
    ) -> AsyncGenerator[Device, None]:
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
