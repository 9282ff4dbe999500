"""Projects and their declared tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.globalids import KeyPart, Node
from gateway.sync import projects as domain
from gateway.sync.tables import ConflictPolicy as DomainConflictPolicy
from gateway.sync.tables import FieldSpec, build_table_spec
from gateway.sync.tables import FieldType as DomainFieldType

FieldType = strawberry.enum(DomainFieldType, description="The type of a declared field.")
ConflictPolicy = strawberry.enum(
    DomainConflictPolicy,
    name="ConflictPolicy",
    description="LAST_WRITER_WINS: concurrent edits are applied in (time, order) order and the "
    "conflict is recorded for review. REJECT: the batch is refused with CONFLICT and the "
    "current record, so the device can rebase.",
)


@strawberry.type(description="A declared field of a table.")
class FieldDefinition:
    name: str
    type: FieldType
    required: bool


@strawberry.type(description="A declared table of a project.")
class Table(Node):
    name: str
    key_field: str | None = strawberry.field(
        description="The field whose value is a record's key; without one the key is its recordId."
    )
    fields: list[FieldDefinition]
    has_utc_time: bool = strawberry.field(description="The table declares `utcTime` (epoch ms).")
    has_local_time: bool = strawberry.field(description="The table declares `localTime`.")
    conflict_policy: ConflictPolicy
    created_at: datetime
    project: strawberry.Private[str]

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.project, self.name)

    @classmethod
    def from_domain(cls, project: str, table: domain.DeclaredTable) -> Table:
        spec = table.spec
        return cls(
            project=project,
            name=spec.name,
            key_field=spec.key_field,
            fields=[
                FieldDefinition(name=f.name, type=f.type, required=f.required) for f in spec.fields
            ],
            has_utc_time=spec.has_utc_time,
            has_local_time=spec.has_local_time,
            conflict_policy=spec.conflict_policy,
            created_at=table.created_at,
        )


@strawberry.type(description="A data space with declared tables, used by its members.")
class Project(Node):
    code: str
    name: str
    open: bool = strawberry.field(
        description="Every signed-in user may use it; otherwise only its members (and admins)."
    )
    created_at: datetime
    tables: list[Table]
    members: list[str] = strawberry.field(
        description="The users who may use it (an open project admits everyone besides). Admins "
        "see all of them; others see themselves and, professionals, the users who granted them "
        "access here."
    )

    def node_key(self) -> tuple[KeyPart, ...]:
        return (self.code,)

    @classmethod
    def from_domain(cls, project: domain.ProjectInfo) -> Project:
        return cls(
            code=project.code,
            name=project.name,
            open=project.open,
            created_at=project.created_at,
            tables=[Table.from_domain(project.code, t) for t in project.tables],
            members=list(project.members),
        )


@strawberry.input
class FieldInput:
    name: str
    type: FieldType
    required: bool = False


@strawberry.type
class ProjectQuery:
    @strawberry.field(
        description="The projects you may use (admins: all), ordered by code, with their tables."
    )
    async def projects(self, info: Info) -> list[Project]:
        found = await domain.list_projects(info.context.db, info.context.principal)
        return [Project.from_domain(p) for p in found]

    @strawberry.field(
        description="One project by code; null when there is none, FORBIDDEN when you are not "
        "one of its members."
    )
    async def project(self, info: Info, code: str) -> Project | None:
        found = await domain.find_project(info.context.db, info.context.principal, code)
        return Project.from_domain(found) if found else None


@strawberry.type
class ProjectMutation:
    @strawberry.mutation(
        description="Create a project (admins only). Only its members may use it (add them with "
        "addProjectMember), or every signed-in user when it is open."
    )
    async def create_project(
        self,
        info: Info,
        code: str,
        name: str,
        open: Annotated[
            bool, strawberry.argument(description="Admit every signed-in user, not only members.")
        ] = False,
    ) -> Project:
        created = await domain.create_project(
            info.context.db, info.context.principal, code, name, open=open
        )
        return Project.from_domain(created)

    @strawberry.mutation(
        description="Let a user use a project (admins only); adding a member again changes nothing."
    )
    async def add_project_member(self, info: Info, project: str, user: str) -> Project:
        found = await domain.add_member(info.context.db, info.context.principal, project, user)
        return Project.from_domain(found)

    @strawberry.mutation(
        description="Withdraw a user's membership (admins only): their live subscriptions of the "
        "project end. False when they were not a member. Their data stays."
    )
    async def remove_project_member(self, info: Info, project: str, user: str) -> bool:
        return await domain.remove_member(
            info.context.db, info.context.principal, project, user, events=info.context.services
        )

    @strawberry.mutation(
        description="Declare a table of a project (admins only). A table with `utcTime` (INT) "
        "or `localTime` (DATETIME) fields gets sample times and time-range filters."
    )
    async def define_table(
        self,
        info: Info,
        project: str,
        name: str,
        fields: list[FieldInput],
        key_field: str | None = None,
        conflict_policy: ConflictPolicy = ConflictPolicy.LAST_WRITER_WINS,
    ) -> Table:
        spec = build_table_spec(
            name,
            (FieldSpec(name=f.name, type=f.type, required=f.required) for f in fields),
            key_field,
            conflict_policy,
        )
        table = await domain.define_table(info.context.db, info.context.principal, project, spec)
        return Table.from_domain(project, table)

    @strawberry.mutation(
        description="Change how a table treats concurrent edits (admins only); applies to "
        "batches written from now on."
    )
    async def set_conflict_policy(
        self, info: Info, project: str, table: str, policy: ConflictPolicy
    ) -> Table:
        changed = await domain.set_conflict_policy(
            info.context.db, info.context.principal, project, table, policy
        )
        return Table.from_domain(project, changed)
