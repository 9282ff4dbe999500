"""Conflicts between devices (RegardingWork's conflict detection), and their review."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gateway.graphql.actions import ActionType
from gateway.graphql.context import Info
from gateway.graphql.pagination import Connection
from gateway.graphql.projects import ConflictPolicy
from gateway.graphql.scalars import Long
from gateway.sync import conflict_review as domain
from gateway.sync.conflicts import ConflictKind as DomainConflictKind
from gateway.sync.conflicts import ConflictStatus as DomainConflictStatus
from gateway.sync.conflicts import Version

ConflictKind = strawberry.enum(
    DomainConflictKind,
    name="ConflictType",
    description="CONCURRENT_UPDATE: an UPDATE or DELETE of a record another writer changed "
    "unseen. UPDATE_AFTER_DELETE: an UPDATE of a record another writer deleted.",
)
ConflictStatus = strawberry.enum(DomainConflictStatus, name="ConflictStatus")
Resolution = strawberry.enum(
    domain.Resolution,
    name="ConflictResolution",
    description="KEEP_WINNER closes the conflict; APPLY_LOSER writes the losing change again, "
    "as a new action that every device receives.",
)


@strawberry.type(description="One side of a conflict: the change as its action carried it.")
class ConflictVersion:
    device_id: str | None
    action: ActionType
    time: Long
    order: int
    position: Long | None = strawberry.field(description="The action's place in the log.")
    data: JSON | None

    @classmethod
    def from_domain(cls, v: Version) -> ConflictVersion:
        return cls(
            device_id=v.device_id,
            action=v.action,
            time=Long(v.time),
            order=v.order,
            position=Long(v.position) if v.position is not None else None,
            data=v.data,
        )


@strawberry.type(description="Two writers changed one record without seeing each other's change.")
class Conflict:
    id: int
    project: str
    table: str
    user: str
    record_id: str
    key: str
    type: ConflictKind
    policy: ConflictPolicy
    status: ConflictStatus
    winner: ConflictVersion = strawberry.field(description="The change the record kept.")
    loser: ConflictVersion = strawberry.field(
        description="The change that lost; under LAST_WRITER_WINS it is superseded in the log."
    )
    devices: list[str] = strawberry.field(description="The writers' deviceIds, winner first.")
    detected_at: datetime
    resolution: Resolution | None
    resolved_by: str | None
    resolved_at: datetime | None

    @classmethod
    def from_domain(cls, c: domain.ConflictInfo) -> Conflict:
        return cls(
            id=c.id,
            project=c.project,
            table=c.table,
            user=c.user,
            record_id=c.record_id,
            key=c.key,
            type=c.kind,
            policy=c.policy,
            status=c.status,
            winner=ConflictVersion.from_domain(c.winner),
            loser=ConflictVersion.from_domain(c.loser),
            devices=c.devices,
            detected_at=c.detected_at,
            resolution=c.resolution,
            resolved_by=c.resolved_by,
            resolved_at=c.resolved_at,
        )


@strawberry.type
class ConflictQuery:
    @strawberry.field(description="Recorded conflicts, newest first, of the data you may see.")
    async def conflicts(
        self,
        info: Info,
        project: str,
        status: ConflictStatus | None = None,
        user: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Conflict]:
        page = await domain.list_conflicts(
            info.context.db,
            info.context.principal,
            project,
            status=status,
            user=user,
            first=first,
            after=after,
        )
        return Connection.of(
            ((c.cursor, Conflict.from_domain(c)) for c in page.conflicts),
            has_next_page=page.has_next_page,
        )


@strawberry.type
class ConflictMutation:
    @strawberry.mutation(description="Close an open conflict (CONFLICT when already resolved).")
    async def resolve_conflict(self, info: Info, id: int, resolution: Resolution) -> Conflict:
        resolved = await domain.resolve_conflict(
            info.context.db, info.context.principal, id, resolution, events=info.context.services
        )
        return Conflict.from_domain(resolved)
