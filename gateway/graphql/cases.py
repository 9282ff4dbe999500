"""CSPro's cases pending synchronization towards a device, and a case's status."""

from __future__ import annotations

from typing import Annotated

import strawberry

from gateway.graphql.arguments import PageAfter, PageSize, ProjectCode, WhoseDevice
from gateway.graphql.context import Info
from gateway.graphql.devices import NAMED_HELP
from gateway.graphql.history import SyncEvent
from gateway.graphql.pagination import Connection
from gateway.graphql.scalars import Long
from gateway.sync import cases


@strawberry.type(description="A case (record) whose current version has not reached a device.")
class PendingCase:
    key: str = strawberry.field(
        description="The case's key (its table's keyField value, else its recordId)."
    )
    position: Long = strawberry.field(description="The position of its last change (its version).")
    uuid: str = strawberry.field(description="The record's id.")


@strawberry.type(description="A case's current version and the exchange that carried it.")
class CaseStatus:
    key: str = strawberry.field(description="The case's key.")
    position: Long = strawberry.field(description="The position of its last change (its version).")
    uuid: str = strawberry.field(description="The record's id.")
    sync_history: list[SyncEvent] = strawberry.field(
        description="The put or get in which the current version was exchanged with the "
        "device; empty while it is pending."
    )


def _pending_case(case: cases.PendingCase) -> PendingCase:
    return PendingCase(key=case.key, position=Long(case.position), uuid=case.uuid)


@strawberry.type
class CaseQuery:
    @strawberry.field(
        description="Records whose current version has not reached the device known as "
        f"deviceName (pending towards the device; what waits on it is its pendingUp). {NAMED_HELP}"
    )
    async def cases_pending_sync(
        self,
        info: Info,
        project: ProjectCode,
        device_name: Annotated[
            str,
            strawberry.argument(
                description="The device: its deviceId, or any name it has had (see reportDevice)."
            ),
        ],
        user: WhoseDevice = None,
        first: PageSize = 50,
        after: PageAfter = None,
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
        description=f"A case's status towards the device known as deviceName. {NAMED_HELP}"
    )
    async def case_status(
        self,
        info: Info,
        project: ProjectCode,
        key: Annotated[
            str,
            strawberry.argument(
                description="The case's key (its table's keyField value, else its recordId)."
            ),
        ],
        device_name: Annotated[
            str,
            strawberry.argument(
                description="The device: its deviceId, or any name it has had (see reportDevice)."
            ),
        ],
        user: WhoseDevice = None,
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
