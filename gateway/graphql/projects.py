"""Projects and their declared tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.arguments import ProjectCode
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.globalids import KeyPart, Node
from gateway.sync import projects as domain
from gateway.sync.tables import ConflictPolicy as DomainConflictPolicy
from gateway.sync.tables import FieldSpec, build_table_spec
from gateway.sync.tables import FieldType as DomainFieldType

FieldType = described_enum(
    DomainFieldType,
    description="The type of a declared field: what its values in jsonData must be.",
    values={
        "STRING": "A JSON string.",
        "INT": "A JSON number without a fraction (64-bit), e.g. utcTime in UNIX ms.",
        "FLOAT": "A JSON number.",
        "BOOLEAN": "true or false.",
        "DATETIME": 'A date and time as an ISO 8601 string, e.g. "2024-05-01T08:30:00" '
        "(localTime has no UTC offset).",
        "JSON": "Any JSON value.",
    },
)
ConflictPolicy = described_enum(
    DomainConflictPolicy,
    name="ConflictPolicy",
    description="What happens when two devices change one record without seeing each "
    "other's change.",
    values={
        "LAST_WRITER_WINS": "Both changes are applied in (time, order) order, so the later one "
        "wins, and the conflict is recorded for review (see conflicts).",
        "REJECT": "The batch with the later change is refused with CONFLICT and the record as "
        "it is, so the device can merge and write again.",
    },
)


@strawberry.type(description="A declared field of a table.")
class FieldDefinition:
    name: str = strawberry.field(description="The field's name in jsonData.")
    type: FieldType = strawberry.field(description="The type its values must have.")
    required: bool = strawberry.field(description="Every INSERT must give it (not null).")


@strawberry.type(description="The two fields that bound a record's range (e.g. a session's).")
class Overlap:
    start: str = strawberry.field(description="The field where the range starts.")
    end: str = strawberry.field(description="The field where it ends (not included).")


@strawberry.input(description="The two fields that bound a record's range (e.g. a session's).")
class OverlapInput:
    start: str = strawberry.field(description="The field where the range starts.")
    end: str = strawberry.field(description="The field where it ends (not included).")


@strawberry.type(description="A declared table of a project.")
class Table(Node):
    name: str = strawberry.field(description="The table's name, unique in its project.")
    key_field: str | None = strawberry.field(
        description="The field whose value is a record's key; without one the key is its recordId."
    )
    fields: list[FieldDefinition] = strawberry.field(
        description="Its declared fields, in the order declared."
    )
    has_utc_time: bool = strawberry.field(description="The table declares `utcTime` (epoch ms).")
    has_local_time: bool = strawberry.field(description="The table declares `localTime`.")
    conflict_policy: ConflictPolicy = strawberry.field(
        description="What happens when two devices change one record without seeing each "
        "other's change."
    )
    overlap: Overlap | None = strawberry.field(
        description="Two devices' records whose ranges overlap are a SESSION_OVERLAP conflict; "
        "null: ranges are not checked."
    )
    created_at: datetime = strawberry.field(description="When it was declared.")
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
            overlap=Overlap(start=spec.overlap[0], end=spec.overlap[1]) if spec.overlap else None,
            created_at=table.created_at,
        )


@strawberry.type(description="A data space with declared tables, used by its members.")
class Project(Node):
    code: str = strawberry.field(
        description="Its short unique name, used by every operation that names a project."
    )
    name: str = strawberry.field(description="Its display name.")
    open: bool = strawberry.field(
        description="Every signed-in user may use it; otherwise only its members (and admins)."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    tables: list[Table] = strawberry.field(description="Its declared tables, by name.")
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


@strawberry.input(description="A field of a table being declared.")
class FieldInput:
    name: str = strawberry.field(description="The field's name in jsonData.")
    type: FieldType = strawberry.field(description="The type its values must have.")
    required: bool = strawberry.field(
        default=False, description="Every INSERT must give it (not null)."
    )


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
    async def project(
        self,
        info: Info,
        code: ProjectCode,
    ) -> Project | None:
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
        code: Annotated[
            str,
            strawberry.argument(
                description="Its short unique name: lower-case letters, digits, '-' and '_', at "
                "most 64, starting with a letter or digit."
            ),
        ],
        name: Annotated[
            str, strawberry.argument(description="Its display name (at most 200 characters).")
        ],
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
    async def add_project_member(
        self,
        info: Info,
        project: ProjectCode,
        user: Annotated[str, strawberry.argument(description="The user's id.")],
    ) -> Project:
        found = await domain.add_member(info.context.db, info.context.principal, project, user)
        return Project.from_domain(found)

    @strawberry.mutation(
        description="Withdraw a user's membership (admins only): their live subscriptions of the "
        "project end. False when they were not a member. Their data stays."
    )
    async def remove_project_member(
        self,
        info: Info,
        project: ProjectCode,
        user: Annotated[str, strawberry.argument(description="The user's id.")],
    ) -> bool:
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
        project: ProjectCode,
        name: Annotated[
            str, strawberry.argument(description="The table's name, unique in the project.")
        ],
        fields: Annotated[
            list[FieldInput],
            strawberry.argument(description="Its fields; jsonData may hold only these."),
        ],
        key_field: Annotated[
            str | None,
            strawberry.argument(
                description="A field whose value is a record's key for people (a case id); "
                "omitted: the recordId is the key."
            ),
        ] = None,
        conflict_policy: Annotated[
            ConflictPolicy,
            strawberry.argument(
                description="What happens when two devices change one record without seeing "
                "each other's change."
            ),
        ] = ConflictPolicy.LAST_WRITER_WINS,
        overlap: Annotated[
            OverlapInput | None,
            strawberry.argument(
                description="Two fields of the same type (INT, FLOAT or DATETIME) bounding each "
                "record's range, e.g. a session's start and end: when two devices' records "
                "overlap, both are kept and a SESSION_OVERLAP conflict is listed for review."
            ),
        ] = None,
    ) -> Table:
        spec = build_table_spec(
            name,
            (FieldSpec(name=f.name, type=f.type, required=f.required) for f in fields),
            key_field,
            conflict_policy,
            (overlap.start, overlap.end) if overlap else None,
        )
        table = await domain.define_table(info.context.db, info.context.principal, project, spec)
        return Table.from_domain(project, table)

    @strawberry.mutation(
        description="Change how a table treats concurrent edits (admins only); applies to "
        "batches written from now on."
    )
    async def set_conflict_policy(
        self,
        info: Info,
        project: ProjectCode,
        table: Annotated[str, strawberry.argument(description="The table's name.")],
        policy: Annotated[ConflictPolicy, strawberry.argument(description="The new policy.")],
    ) -> Table:
        changed = await domain.set_conflict_policy(
            info.context.db, info.context.principal, project, table, policy
        )
        return Table.from_domain(project, changed)
