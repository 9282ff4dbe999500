"""The caller (``me``) and access grants."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.auth.principal import Role as DomainRole
from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.sync import grants as domain

Role = strawberry.enum(DomainRole, description="SenSeeAct's roles.")


@strawberry.type(
    description="`user` lets `grantee` (a professional) access their data in `project`."
)
class AccessGrant(Node):
    project: str
    user: str
    grantee: str
    granted_by: str
    created_at: datetime

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.project, self.user, self.grantee)

    @classmethod
    def from_domain(cls, grant: domain.Grant) -> AccessGrant:
        return cls(
            project=grant.project,
            user=grant.user_id,
            grantee=grant.grantee_id,
            granted_by=grant.granted_by,
            created_at=grant.created_at,
        )


@strawberry.type(description="The authenticated caller.")
class Me:
    id: str
    role: Role

    @strawberry.field(description="Grants the caller gave and grants the caller received.")
    async def grants(self, info: Info) -> list[AccessGrant]:
        # Looked up only when asked for: ``me { id }`` costs no query.
        found = await domain.grants_involving(info.context.db, self.id)
        return [AccessGrant.from_domain(g) for g in found]


@strawberry.type
class AccessQuery:
    @strawberry.field(description="Who the token says you are, and your access grants.")
    async def me(self, info: Info) -> Me:
        principal = info.context.principal
        return Me(id=principal.user_id, role=principal.role)


@strawberry.type
class AccessMutation:
    @strawberry.mutation(
        description="Let a professional access `user`'s data in a project (default user: "
        "yourself; admins may grant for anyone). Granting again returns the existing grant."
    )
    async def grant_access(
        self, info: Info, project: str, grantee: str, user: str | None = None
    ) -> AccessGrant:
        grant = await domain.grant_access(
            info.context.db,
            info.context.principal,
            project,
            grantee,
            user,
            events=info.context.services,
        )
        return AccessGrant.from_domain(grant)

    @strawberry.mutation(
        description="Withdraw a grant; false when there was none. The grantee's live "
        "subscriptions of your data end."
    )
    async def revoke_access(
        self, info: Info, project: str, grantee: str, user: str | None = None
    ) -> bool:
        return await domain.revoke_access(
            info.context.db,
            info.context.principal,
            project,
            grantee,
            user,
            events=info.context.services,
        )
