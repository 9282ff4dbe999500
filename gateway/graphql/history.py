"""CSPro's sync history: events, the summary, the services that synced, and recording a sync
with another service."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.devices import NAMED_HELP
from gateway.graphql.globalids import KeyPart, Node
from gateway.graphql.pagination import Connection
from gateway.sync import cases, history
from gateway.sync.exchange import Direction

SyncDirection = strawberry.enum(
    Direction, name="SyncDirection", description="PUT: device to gateway; GET: back."
)


@strawberry.type(description="One put or get between a device and a service (CSPro).")
class SyncEvent(Node):
    time: datetime
    device_id: str
    device_name: str
    username: str = strawberry.field(description="Who synced.")
    user: str = strawberry.field(description="Whose data.")
    universe: str = strawberry.field(description="The exchange's filter; empty for all.")
    direction: SyncDirection
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


@strawberry.type(description="CSPro's summary: the latest put and get.")
class SyncSummary:
    last_put: SyncEvent | None
    last_get: SyncEvent | None
    cases_pending_sync: int | None = strawberry.field(
        description="With a deviceName: records whose current version has not reached it."
    )


@strawberry.type(name="SyncService", description="A device that synced, with every name it had.")
class SyncServiceInfo:
    user: str = strawberry.field(description="Whose data the device syncs.")
    device_id: str
    device_names: list[str]
    first_sync_time: datetime
    last_sync_time: datetime


@strawberry.type
class HistoryQuery:
    @strawberry.field(
        description="The latest put and get: of one device when deviceName is given, else of "
        f"user's devices when user is given, else of every device you may see. {NAMED_HELP}"
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
        f"user's devices when user is given, else of every device you may see. {NAMED_HELP}"
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
class HistoryMutation:
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
