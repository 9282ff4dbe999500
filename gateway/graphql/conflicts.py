"""Conflicts between devices (RegardingWork's conflict detection), and their review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from gateway.graphql.actions import ActionType
from gateway.graphql.arguments import PageAfter, PageSize, ProjectCode
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.pagination import Connection
from gateway.graphql.projects import ConflictPolicy
from gateway.graphql.scalars import Long
from gateway.sync import conflict_review as domain
from gateway.sync.conflicts import ConflictKind as DomainConflictKind
from gateway.sync.conflicts import ConflictStatus as DomainConflictStatus
from gateway.sync.conflicts import Version

ConflictKind = described_enum(
    DomainConflictKind,
    name="ConflictType",
    description="What kind of conflict two devices ran into.",
    values={
        "CONCURRENT_UPDATE": "An UPDATE or DELETE of a record that another device changed in "
        "the meantime, unseen.",
        "UPDATE_AFTER_DELETE": "An UPDATE of a record that another device deleted in the "
        "meantime, unseen.",
        "SESSION_OVERLAP": "Two devices recorded records whose ranges overlap, in a table "
        "declared with overlap (both are kept: the winner is the earlier record, the loser the "
        "new one).",
    },
)
ConflictStatus = described_enum(
    DomainConflictStatus,
    name="ConflictStatus",
    description="Whether a conflict still needs review.",
    values={
        "OPEN": "Detected and not yet reviewed.",
        "RESOLVED": "Reviewed with resolveConflict.",
    },
)
Resolution = described_enum(
    domain.Resolution,
    name="ConflictResolution",
    description="How a reviewer resolves a conflict.",
    values={
        "KEEP_WINNER": "Keep the record as it is and close the conflict.",
        "APPLY_LOSER": "Write the losing change again, as a new action that every device "
        "receives, and close the conflict.",
    },
)


@strawberry.type(description="One side of a conflict: the change as its action carried it.")
class ConflictVersion:
    device_id: str | None = strawberry.field(
        description="The device that wrote the change; null when it was written without one."
    )
    action: ActionType = strawberry.field(description="What the change did.")
    time: Long = strawberry.field(description="When the device made the change, UNIX time in ms.")
    order: int = strawberry.field(
        description="Orders changes of the same time, as the writer gave it."
    )
    position: Long | None = strawberry.field(
        description="The change's position (see DatabaseAction.position); null when it was "
        "never stored."
    )
    data: JSON | None = strawberry.field(
        description="The record's fields the change carried; null for a DELETE."
    )
    record_id: str | None = strawberry.field(
        description="For SESSION_OVERLAP, this side's record (the two differ); null otherwise "
        "(both sides are the conflict's recordId)."
    )

    @classmethod
    def from_domain(cls, v: Version) -> ConflictVersion:
        return cls(
            device_id=v.device_id,
            action=v.action,
            time=Long(v.time),
            order=v.order,
            position=Long(v.position) if v.position is not None else None,
            data=v.data,
            record_id=v.record_id,
        )


@strawberry.type(
    description="Two writers changed one record without seeing each other's change, or two "
    "devices recorded overlapping ranges (SESSION_OVERLAP)."
)
class Conflict:
    id: int = strawberry.field(description="The conflict's id (what resolveConflict takes).")
    project: str = strawberry.field(description="The project's code.")
    table: str = strawberry.field(description="The record's table.")
    user: str = strawberry.field(description="Whose data the record is.")
    record_id: str = strawberry.field(description="The record's id.")
    key: str = strawberry.field(
        description="The record's key (its keyField's value, else its recordId)."
    )
    type: ConflictKind = strawberry.field(description="What kind of conflict it is.")
    policy: ConflictPolicy = strawberry.field(
        description="The table's conflict policy when the conflict was detected."
    )
    status: ConflictStatus = strawberry.field(description="Whether it still needs review.")
    winner: ConflictVersion = strawberry.field(description="The change the record kept.")
    loser: ConflictVersion = strawberry.field(
        description="The change that lost; under LAST_WRITER_WINS it was applied first and "
        "then overwritten."
    )
    devices: list[str] = strawberry.field(description="The writers' deviceIds, winner first.")
    detected_at: datetime = strawberry.field(description="When the gateway detected it.")
    resolution: Resolution | None = strawberry.field(
        description="How it was resolved; null while it is open."
    )
    resolved_by: str | None = strawberry.field(
        description="Who resolved it; null while it is open."
    )
    resolved_at: datetime | None = strawberry.field(
        description="When it was resolved; null while it is open."
    )

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
        project: ProjectCode,
        status: Annotated[
            ConflictStatus | None,
            strawberry.argument(description="Only conflicts in this status (omitted: all)."),
        ] = None,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Only conflicts in this user's data (omitted: of everyone whose "
                "data you may see)."
            ),
        ] = None,
        first: PageSize = 50,
        after: PageAfter = None,
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
    async def resolve_conflict(
        self,
        info: Info,
        id: Annotated[int, strawberry.argument(description="The conflict's id.")],
        resolution: Annotated[Resolution, strawberry.argument(description="How to resolve it.")],
    ) -> Conflict:
        resolved = await domain.resolve_conflict(
            info.context.db, info.context.principal, id, resolution, events=info.context.services
        )
        return Conflict.from_domain(resolved)
