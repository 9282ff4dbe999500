"""Current records, for frontends that show the data itself."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from gateway.graphql.arguments import PageAfter, PageSize, ProjectCode, WhoseData
from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.graphql.pagination import Connection
from gateway.graphql.scalars import Long
from gateway.sync import records as domain


@strawberry.type(description="The current state of one record, built from its actions.")
class Record(Node):
    table: str = strawberry.field(description="Its table.")
    user: str = strawberry.field(description="Whose data it is.")
    record_id: str = strawberry.field(description="Its id, 32 lower-case hex digits.")
    key: str = strawberry.field(description="The keyField's value, else the recordId.")
    data: JSON | None = strawberry.field(description="Its fields now; null once deleted.")
    deleted: bool = strawberry.field(
        description="It was deleted (listed only with includeDeleted)."
    )
    position: Long = strawberry.field(
        description="The position of its last change: its version (give it as baseVersion "
        "when changing it)."
    )
    device_id: str | None = strawberry.field(description="The device that last changed it.")
    created_at: datetime = strawberry.field(description="When the gateway stored its INSERT.")
    updated_at: datetime = strawberry.field(description="When the gateway stored its last change.")
    project: strawberry.Private[str]

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.project, self.table, self.user, self.record_id)

    @strawberry.field(description="data as a JSON string, like an action's jsonData.")
    def json_data(self) -> str | None:
        return None if self.data is None else json.dumps(self.data, separators=(",", ":"))

    @classmethod
    def from_domain(cls, project: str, r: domain.RecordView) -> Record:
        return cls(
            project=project,
            table=r.table,
            user=r.user,
            record_id=r.record_id,
            key=r.key,
            data=r.data,
            deleted=r.deleted,
            position=Long(r.position),
            device_id=r.device_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


@strawberry.type
class RecordQuery:
    @strawberry.field(description="The current records of one table for a user, oldest first.")
    async def records(
        self,
        info: Info,
        project: ProjectCode,
        table: Annotated[str, strawberry.argument(description="The table's name.")],
        user: WhoseData = None,
        first: PageSize = 50,
        after: PageAfter = None,
        include_deleted: Annotated[
            bool, strawberry.argument(description="Also list deleted records.")
        ] = False,
    ) -> Connection[Record]:
        page = await domain.list_records(
            info.context.db,
            info.context.principal,
            project,
            table,
            user=user,
            first=first,
            after=after,
            include_deleted=include_deleted,
        )
        return Connection.of(
            ((r.cursor, Record.from_domain(project, r)) for r in page.records),
            has_next_page=page.has_next_page,
        )
