"""Projects (data spaces) and their declared tables."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import authorize_user_data, target_user
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Project, ProjectTable
from gateway.errors import BadUserInput, Forbidden, NotFound
from gateway.sync.selection import CatalogTable
from gateway.sync.tables import ConflictPolicy, FieldSpec, TableSpec

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class DeclaredTable:
    spec: TableSpec
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    code: str
    name: str
    created_at: datetime
    tables: tuple[DeclaredTable, ...]


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"only admins may {action}")


async def require_project(session: AsyncSession, code: str) -> Project:
    project = await session.scalar(select(Project).where(Project.code == code))
    if project is None:
        raise NotFound(f"project {code!r} does not exist", field="project")
    return project


async def create_project(db: Database, principal: Principal, code: str, name: str) -> ProjectInfo:
    require_admin(principal, "create projects")
    if not CODE_PATTERN.fullmatch(code):
        raise BadUserInput(
            f"invalid project code {code!r}: use 1 to 64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field="code",
        )
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadUserInput(f"project name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    try:
        async with db.transaction() as session:
            if await session.scalar(select(Project.id).where(Project.code == code)) is not None:
                raise BadUserInput(f"project {code!r} already exists", field="code")
            project = Project(code=code, name=name)
            session.add(project)
    except IntegrityError as exc:  # a concurrent createProject won the race
        raise BadUserInput(f"project {code!r} already exists", field="code") from exc
    return ProjectInfo(
        code=project.code, name=project.name, created_at=project.created_at, tables=()
    )


async def define_table(
    db: Database, principal: Principal, project_code: str, spec: TableSpec
) -> DeclaredTable:
    require_admin(principal, "define tables")
    try:
        async with db.transaction() as session:
            project = await require_project(session, project_code)
            exists = await session.scalar(
                select(ProjectTable.id).where(
                    ProjectTable.project_id == project.id, ProjectTable.name == spec.name
                )
            )
            if exists is not None:
                raise BadUserInput(
                    f"table {spec.name!r} already exists in project {project_code!r}", field="name"
                )
            row = ProjectTable(
                project_id=project.id,
                name=spec.name,
                key_field=spec.key_field,
                fields=[field.to_json() for field in spec.fields],
                conflict_policy=spec.conflict_policy.value,
            )
            session.add(row)
    except IntegrityError as exc:
        raise BadUserInput(f"table {spec.name!r} already exists", field="name") from exc
    return DeclaredTable(spec=spec, created_at=row.created_at)


async def set_conflict_policy(
    db: Database, principal: Principal, project_code: str, table: str, policy: ConflictPolicy
) -> DeclaredTable:
    """Change how a table treats concurrent edits; it applies to batches written from now on."""
    require_admin(principal, "change conflict policies")
    async with db.transaction() as session:
        project = await require_project(session, project_code)
        row = await session.scalar(
            select(ProjectTable).where(
                ProjectTable.project_id == project.id, ProjectTable.name == table
            )
        )
        if row is None:
            raise NotFound(f"table {table!r} does not exist in {project_code!r}", field="table")
        row.conflict_policy = policy.value
    return _declared(row)


async def list_projects(db: Database, codes: Sequence[str] | None = None) -> list[ProjectInfo]:
    """Projects ordered by code, each with its tables: two queries however many projects."""
    async with db.session() as session:
        query = select(Project).order_by(Project.code)
        if codes is not None:
            query = query.where(Project.code.in_(codes))
        projects = (await session.scalars(query)).all()
        if not projects:
            return []
        rows = await session.scalars(
            select(ProjectTable)
            .where(ProjectTable.project_id.in_([p.id for p in projects]))
            .order_by(ProjectTable.name)
        )
        tables: dict[int, list[DeclaredTable]] = defaultdict(list)
        for row in rows:
            tables[row.project_id].append(_declared(row))
    return [
        ProjectInfo(
            code=p.code,
            name=p.name,
            created_at=p.created_at,
            tables=tuple(tables[p.id]) if p.id is not None else (),
        )
        for p in projects
    ]


async def find_project(db: Database, code: str) -> ProjectInfo | None:
    found = await list_projects(db, [code])
    return found[0] if found else None


def _declared(row: ProjectTable) -> DeclaredTable:
    spec = TableSpec(
        name=row.name,
        fields=tuple(FieldSpec.from_json(f) for f in row.fields),
        key_field=row.key_field,
        conflict_policy=ConflictPolicy(row.conflict_policy),
    )
    return DeclaredTable(spec=spec, created_at=row.created_at)


@dataclass(frozen=True, slots=True)
class UserData:
    """A project's tables and the user whose data the caller acts on, access checked."""

    project_id: int
    tables: dict[str, CatalogTable]
    user: str


async def open_user_data(
    session: AsyncSession, principal: Principal, project: str, user: str | None
) -> UserData:
    """The prologue of every operation on a user's data: the project and its tables, the
    target user (omitted: the caller), and SenSeeAct's access rule."""
    found, tables = await load_catalog(session, project)
    assert found.id is not None
    owner = target_user(principal, user)
    await authorize_user_data(session, principal, found.id, owner)
    return UserData(found.id, tables, owner)


async def load_catalog(session: AsyncSession, code: str) -> tuple[Project, dict[str, CatalogTable]]:
    """A project and its declared tables by name, for the sync log."""
    project = await require_project(session, code)
    rows = await session.scalars(select(ProjectTable).where(ProjectTable.project_id == project.id))
    tables = {}
    for row in rows:
        assert row.id is not None
        tables[row.name] = CatalogTable(id=row.id, spec=_declared(row).spec)
    return project, tables
