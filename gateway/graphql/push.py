"""Push registrations (SenSeeAct's register-push / unregister-push)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.arguments import DeviceId, ProjectCode, WhoseData
from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.push import registrations as domain


@strawberry.type(description="A device token woken when matching tables of its user change.")
class PushRegistration(Node):
    project: str = strawberry.field(description="The project's code.")
    user: str = strawberry.field(description="Whose data changes wake the device.")
    device_id: str = strawberry.field(description="The device's id.")
    fcm_token: str = strawberry.field(description="The device's Firebase Cloud Messaging token.")
    include_tables: list[str] | None = strawberry.field(
        description="Only changes of these tables wake it (null: every table)."
    )
    exclude_tables: list[str] | None = strawberry.field(
        description="Changes of these tables never wake it."
    )
    created_at: datetime = strawberry.field(description="When the device first registered.")
    updated_at: datetime = strawberry.field(description="When it last registered.")

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.project, self.user, self.device_id)

    @classmethod
    def from_domain(cls, r: domain.Registration) -> PushRegistration:
        return cls(
            project=r.project,
            user=r.user,
            device_id=r.device_id,
            fcm_token=r.token,
            include_tables=r.include_tables,
            exclude_tables=r.exclude_tables,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


@strawberry.type
class PushMutation:
    @strawberry.mutation(
        description="Wake this device with a high-priority data message {project, user, table} "
        "when actions of the user are stored in matching tables. Replaces any registration of the "
        "same project, user and device."
    )
    async def register_push(
        self,
        info: Info,
        project: ProjectCode,
        fcm_token: Annotated[
            str, strawberry.argument(description="The device's Firebase Cloud Messaging token.")
        ],
        device_id: DeviceId,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data changes wake it: a user id (omitted: yours)."
            ),
        ] = None,
        include_tables: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only changes of these tables wake it (omitted or empty: every table)."
            ),
        ] = None,
        exclude_tables: Annotated[
            list[str] | None,
            strawberry.argument(description="Changes of these tables never wake it."),
        ] = None,
    ) -> PushRegistration:
        registration = await domain.register_push(
            info.context.db,
            info.context.principal,
            project,
            token=fcm_token,
            device_id=device_id,
            user=user,
            include_tables=include_tables,
            exclude_tables=exclude_tables,
        )
        return PushRegistration.from_domain(registration)

    @strawberry.mutation(description="Remove a device's registration; false when there was none.")
    async def unregister_push(
        self,
        info: Info,
        project: ProjectCode,
        device_id: DeviceId,
        user: WhoseData = None,
    ) -> bool:
        return await domain.unregister_push(
            info.context.db, info.context.principal, project, device_id=device_id, user=user
        )
