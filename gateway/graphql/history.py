"""CSPro's sync history: events, the summary, the services that synced, and recording a sync
with another service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.arguments import DeviceId, PageAfter, PageSize, ProjectCode, WhoseDevice
from gateway.graphql.context import Info
from gateway.graphql.devices import NAMED_HELP
from gateway.graphql.enums import described_enum
from gateway.graphql.globalids import KeyPart, Node
from gateway.graphql.pagination import Connection
from gateway.sync import cases, history
from gateway.sync.exchange import Direction

SyncDirection = described_enum(
    Direction,
    name="SyncDirection",
    description="Which way a device's exchange went.",
    values={
        "PUT": "The device sent changes (a write).",
        "GET": "The device received changes (a read).",
    },
)


@strawberry.type(
    description="One exchange of a device with the gateway or another service: a put or a get."
)
class SyncEvent(Node):
    time: datetime = strawberry.field(description="When the exchange happened.")
    device_id: str = strawberry.field(description="The device's id.")
    device_name: str = strawberry.field(
        description="The device's name at the time (its deviceId when it had none)."
    )
    username: str = strawberry.field(description="Who synced.")
    user: str = strawberry.field(description="Whose data.")
    universe: str = strawberry.field(description="The exchange's filter; empty for all.")
    direction: SyncDirection = strawberry.field(description="Which way it went.")
    partial: bool = strawberry.field(description="The device was not brought fully up to date.")
    event_id: strawberry.Private[int]

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.event_id,)

    @classmethod
    def from_domain(cls, e: history.SyncEventInfo) -> SyncEvent:
        return cls(
            event_id=e.id,
            time=e.time,
            device_id=e.device_id,
            device_name=e.device_name,
            username=e.username,
            user=e.user,
            universe=e.universe,
            direction=e.direction,
            partial=e.partial,
        )


@strawberry.type(description="The latest put and get.")
class SyncSummary:
    last_put: SyncEvent | None = strawberry.field(
        description="The latest put (changes sent); null when there was none."
    )
    last_get: SyncEvent | None = strawberry.field(
        description="The latest get (changes received); null when there was none."
    )
    cases_pending_sync: int | None = strawberry.field(
        description="With a deviceName: records whose current version has not reached it."
    )


@strawberry.type(name="SyncService", description="A device that synced, with every name it had.")
class SyncServiceInfo:
    user: str = strawberry.field(description="Whose data the device syncs.")
    device_id: str = strawberry.field(description="The device's id.")
    device_names: list[str] = strawberry.field(
        description="Every name it has had; its deviceId when it never reported one."
    )
    first_sync_time: datetime = strawberry.field(description="Its first put or get.")
    last_sync_time: datetime = strawberry.field(description="Its latest put or get.")


@strawberry.type
class HistoryQuery:
    @strawberry.field(
        description="The latest put and get: of one device when deviceName is given, else of "
        f"user's devices when user is given, else of every device you may see. {NAMED_HELP}"
    )
    async def sync_summary(
        self,
        info: Info,
        project: ProjectCode,
        device_name: Annotated[
            str | None,
            strawberry.argument(
                description="The device: its deviceId, or any name it has had (see "
                "reportDevice). Omitted: of every device (see user)."
            ),
        ] = None,
        user: WhoseDevice = None,
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
        f"user's devices when user is given, else of every device you may see. {NAMED_HELP}"
    )
    async def sync_history(
        self,
        info: Info,
        project: ProjectCode,
        device_name: Annotated[
            str | None,
            strawberry.argument(
                description="The device: its deviceId, or any name it has had (see "
                "reportDevice). Omitted: of every device (see user)."
            ),
        ] = None,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose devices: a user id (omitted: yours when deviceName is given, "
                "else everyone's you may see)."
            ),
        ] = None,
        direction: Annotated[
            SyncDirection | None,
            strawberry.argument(description="Only puts or only gets (omitted: both)."),
        ] = None,
        first: PageSize = 50,
        after: PageAfter = None,
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
    async def sync_services(
        self,
        info: Info,
        project: ProjectCode,
    ) -> list[SyncServiceInfo]:
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
class HistoryMutation:
    @strawberry.mutation(
        description="Record a sync of a device with another service (e.g. a file share) in "
        "its sync history."
    )
    async def record_sync_event(
        self,
        info: Info,
        project: ProjectCode,
        device_id: DeviceId,
        direction: Annotated[SyncDirection, strawberry.argument(description="Which way it went.")],
        device_name: Annotated[
            str | None,
            strawberry.argument(description="The device's name (kept with its other names)."),
        ] = None,
        universe: Annotated[
            str,
            strawberry.argument(
                description="What the exchange covered, e.g. a filter of the service's; empty: "
                "everything."
            ),
        ] = "",
        partial: Annotated[
            bool, strawberry.argument(description="The device was not brought fully up to date.")
        ] = False,
        user: WhoseDevice = None,
        time: Annotated[
            datetime | None,
            strawberry.argument(
                description="When the sync with the service happened, with a time zone "
                "(omitted: now; never in the future)."
            ),
        ] = None,
        username: Annotated[
            str | None,
            strawberry.argument(
                description="Who synced, as the service knows them, e.g. a Dropbox account "
                "(omitted: you)."
            ),
        ] = None,
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
            time=time,
            username=username,
            events=info.context.services,
        )
        return SyncEvent.from_domain(event)
