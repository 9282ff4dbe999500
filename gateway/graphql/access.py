"""The caller (``me``) and access grants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.auth.principal import Role as DomainRole
from gateway.graphql.arguments import ProjectCode
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.globalids import KeyPart, Node
from gateway.sync import grants as domain

Role = described_enum(
    DomainRole,
    description="What a user may do, as their token says.",
    values={
        "PATIENT": "Uses their own data only.",
        "PROFESSIONAL": "Uses their own data, and that of users who granted them access in a "
        "project.",
        "ADMIN": "Uses everyone's data, and manages projects, tables and members.",
    },
)


@strawberry.type(
    description="`user` lets `grantee` (a professional) access their data in `project`."
)
class AccessGrant(Node):
    project: str = strawberry.field(description="The project's code.")
    user: str = strawberry.field(description="Whose data the grant opens.")
    grantee: str = strawberry.field(description="The professional who may access it.")
    granted_by: str = strawberry.field(
        description="Who gave the grant (the user, or an admin for them)."
    )
    created_at: datetime = strawberry.field(description="When it was given.")

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
    id: str = strawberry.field(description="Your user id (the token's subject).")
    role: Role = strawberry.field(description="Your role.")

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
        self,
        info: Info,
        project: ProjectCode,
        grantee: Annotated[str, strawberry.argument(description="The professional's user id.")],
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data: a user id (omitted: yours; only admins name another)."
            ),
        ] = None,
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
        self,
        info: Info,
        project: ProjectCode,
        grantee: Annotated[str, strawberry.argument(description="The professional's user id.")],
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose grant: a user id (omitted: yours; only admins name another)."
            ),
        ] = None,
    ) -> bool:
        return await domain.revoke_access(
            info.context.db,
            info.context.principal,
            project,
            grantee,
            user,
            events=info.context.services,
        )
