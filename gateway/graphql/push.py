"""Push registrations (SenSeeAct's register-push / unregister-push)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.push import registrations as domain


@strawberry.type(description="A device token woken when matching tables of its user change.")
class PushRegistration(Node):
    project: str
    user: str
    device_id: str
    fcm_token: str
    include_tables: list[str] | None
    exclude_tables: list[str] | None
    created_at: datetime
    updated_at: datetime

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
        "when actions of the user commit in matching tables. Replaces any registration of the "
        "same project, user and device."
    )
    async def register_push(
        self,
        info: Info,
        project: str,
        fcm_token: str,
        device_id: str,
        user: str | None = None,
        include_tables: list[str] | None = None,
        exclude_tables: list[str] | None = None,
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
        self, info: Info, project: str, device_id: str, user: str | None = None
    ) -> bool:
        return await domain.unregister_push(
            info.context.db, info.context.principal, project, device_id=device_id, user=user
        )
