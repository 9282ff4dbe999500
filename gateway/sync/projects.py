"""Projects (data spaces), their members and their declared tables."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import (
    CALLER,
    authorize_project,
    authorize_user_data,
    caller_is_member,
    reachable_projects,
    require_admin,
    shown_members,
    target_user,
)
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import insert
from gateway.db.models import AccessGrant, Project, ProjectMember, ProjectTable
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, NotFound
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.selection import CatalogTable
from gateway.sync.tables import ConflictPolicy, FieldSpec, TableSpec
from gateway.sync.text import check_length

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_NAME_LENGTH = 200
MAX_USER_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class DeclaredTable:
    spec: TableSpec
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    code: str
    name: str
    open: bool
    created_at: datetime
    tables: tuple[DeclaredTable, ...]
    members: tuple[str, ...]  # those the caller may see (``access.shown_members``)


def check_user_id(value: str, field: str) -> str:
    return check_length(field, value, MAX_USER_ID_LENGTH, kind="a user id of ")


async def require_project(session: AsyncSession, code: str) -> Project:
    project = await session.scalar(select(Project).where(Project.code == code))
    if project is None:
        raise NotFound(f"project {code!r} does not exist", field="project")
    return project


async def create_project(
    db: Database, principal: Principal, code: str, name: str, *, open: bool = False
) -> ProjectInfo:
    """A new project: closed (members only, none yet) unless ``open``."""
    require_admin(principal, "create projects")
    if not CODE_PATTERN.fullmatch(code):
        raise BadUserInput(
            f"invalid project code {code!r}: use 1 to 64 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit",
            field="code",
        )
    name = check_length("name", name.strip(), MAX_NAME_LENGTH, label="project name")
    try:
        async with db.transaction() as session:
            if await session.scalar(select(Project.id).where(Project.code == code)) is not None:
                raise BadUserInput(f"project {code!r} already exists", field="code")
            project = Project(code=code, name=name, open=open)
            session.add(project)
    except IntegrityError as exc:  # a concurrent createProject won the race
        raise BadUserInput(f"project {code!r} already exists", field="code") from exc
    return ProjectInfo(
        code=project.code,
        name=project.name,
        open=project.open,
        created_at=project.created_at,
        tables=(),
        members=(),
    )


async def add_member(db: Database, principal: Principal, code: str, user: str) -> ProjectInfo:
    """Let ``user`` use a project (admins only); adding a member again changes nothing."""
    require_admin(principal, "add project members")
    check_user_id(user, "user")
    async with db.transaction() as session:
        project = await require_project(session, code)
        member = {"project_id": project.id, "user_id": user, "added_by": principal.user_id}
        await session.execute(
            insert(session, ProjectMember)
            .values(**member, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["project_id", "user_id"])
        )
    found = await list_projects(db, principal, [code])
    return found[0]


async def remove_member(
    db: Database, principal: Principal, code: str, user: str, *, events: Events = NO_EVENTS
) -> bool:
    """Withdraw ``user``'s membership (admins only); False when they were not a member. Their
    live feeds of the project end; their data and grants stay, unused while they are not a
    member."""
    require_admin(principal, "remove project members")
    async with db.transaction() as session:
        project = await require_project(session, code)
        result = await session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == project.id, ProjectMember.user_id == user
            )
        )
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        changes = Changes(access=[project.id] if removed else [])
        await events.staged(session, changes)
    await events.committed(changes)
    return removed


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
                overlap=list(spec.overlap) if spec.overlap else None,
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


async def list_projects(
    db: Database, principal: Principal, codes: Sequence[str] | None = None
) -> list[ProjectInfo]:
    """The projects ``principal`` reaches, ordered by code, each with its tables and the
    members the caller may see: four queries however many projects."""
    async with db.session() as session:
        query = select(Project).order_by(Project.code)
        if codes is not None:
            query = query.where(Project.code.in_(codes))
        reachable = reachable_projects(principal)
        if reachable is not None:
            query = query.where(reachable)
        projects = (await session.scalars(query)).all()
        if not projects:
            return []
        ids = [p.id for p in projects]
        rows = await session.scalars(
            select(ProjectTable)
            .where(ProjectTable.project_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(ProjectTable.name)
        )
        tables: dict[int, list[DeclaredTable]] = defaultdict(list)
        for row in rows:
            tables[row.project_id].append(_declared(row))
        members: dict[int, list[str]] = defaultdict(list)
        for project_id, user_id in await session.execute(
            select(ProjectMember.project_id, ProjectMember.user_id)
            .where(ProjectMember.project_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(ProjectMember.user_id)
        ):
            members[project_id].append(user_id)
        grantors: dict[int, set[str]] = defaultdict(set)
        for project_id, user_id in await session.execute(
            select(AccessGrant.project_id, AccessGrant.user_id).where(
                AccessGrant.project_id.in_(ids),  # type: ignore[attr-defined]
                AccessGrant.grantee_id == principal.user_id,
            )
        ):
            grantors[project_id].add(user_id)
    return [
        ProjectInfo(
            code=p.code,
            name=p.name,
            open=p.open,
            created_at=p.created_at,
            tables=tuple(tables[p.id]) if p.id is not None else (),
            members=tuple(shown_members(principal, members[p.id or 0], grantors[p.id or 0])),
        )
        for p in projects
    ]


async def find_project(db: Database, principal: Principal, code: str) -> ProjectInfo | None:
    """One project; None when there is none, ``Forbidden`` when the caller may not reach it."""
    found = await list_projects(db, principal, [code])
    if found:
        return found[0]
    async with db.session() as session:
        project = await session.scalar(select(Project).where(Project.code == code))
        if project is not None:
            await authorize_project(session, principal, project)
    return None


def _declared(row: ProjectTable) -> DeclaredTable:
    spec = TableSpec(
        name=row.name,
        fields=tuple(FieldSpec.from_json(f) for f in row.fields),
        key_field=row.key_field,
        conflict_policy=ConflictPolicy(row.conflict_policy),
        overlap=(row.overlap[0], row.overlap[1]) if row.overlap else None,
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
    target user (omitted: the caller), and SenSeeAct's access rule. The project, its tables and
    whether the caller is a member come in one query."""
    bound = {"code": project, CALLER.key: principal.user_id}
    rows = (await session.execute(_CATALOG_WITH_MEMBERSHIP, bound)).all()
    if not rows:
        raise NotFound(f"project {project!r} does not exist", field="project")
    found, member = rows[0][0], rows[0][2]
    assert found.id is not None
    owner = target_user(principal, user)
    await authorize_user_data(session, principal, found, owner, member=member)
    return UserData(found.id, _catalog(row for _, row, _ in rows if row is not None), owner)


async def load_catalog(session: AsyncSession, code: str) -> tuple[Project, dict[str, CatalogTable]]:
    """A project and its declared tables by name, for the sync log."""
    project = await require_project(session, code)
    rows = await session.scalars(select(ProjectTable).where(ProjectTable.project_id == project.id))
    return project, _catalog(rows)


def _catalog(rows: Iterable[ProjectTable]) -> dict[str, CatalogTable]:
    tables = {}
    for row in rows:
        assert row.id is not None
        tables[row.name] = CatalogTable(id=row.id, spec=_declared(row).spec)
    return tables


# Built once: every read and write of user data starts with it.
_CATALOG_WITH_MEMBERSHIP = (
    select(Project, ProjectTable, caller_is_member(Project.id))  # type: ignore[arg-type]
    .outerjoin(ProjectTable, ProjectTable.project_id == Project.id)  # type: ignore[arg-type]
    .where(Project.code == bindparam("code"))
    .order_by(ProjectTable.id)
)


async def only_project(session: AsyncSession, principal: Principal) -> str:
    """The code of the one project the caller is a member of, for requests that name none
    (RegardingWork's status has no project); ``BAD_USER_INPUT`` when there are none or several."""
    codes = (
        await session.scalars(
            select(Project.code)
            .join(ProjectMember, ProjectMember.project_id == Project.id)  # type: ignore[arg-type]
            .where(ProjectMember.user_id == principal.user_id)
            .order_by(Project.code)
            .limit(2)
        )
    ).all()
    if len(codes) != 1:
        what = "no project" if not codes else "several projects"
        raise BadUserInput(
            f"you are a member of {what}: name the project", field="project", projects=len(codes)
        )
    return codes[0]
