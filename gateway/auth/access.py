"""Who may do what: every role, membership, grant and ownership rule of the gateway.

Projects (SenSeeAct: "users need to have access to the specified project; admins can access
all projects"):

- admins reach every project; other users reach a project they are a member of, or an ``open``
  one; anyone else is ``FORBIDDEN`` there and does not see it listed.

User data (actions, records, devices and their history, delivered progress, push
registrations, conflicts, syncs and runs, status reports), inside a project the caller reaches:

- patients: their own only;
- professionals: their own, and that of users who granted them access in the project, while
  both reach it;
- admins: everyone's.

Whoever may see a user's data may also change it (SenSeeAct's access covers reading and
writing), except syncs and runs, which only their owner and admins manage.

Objects addressed by id alone (a sync, a run, a conflict) that the caller may not see are
``NOT_FOUND``, as if they did not exist, so ids reveal nothing; everything addressed by project
is ``FORBIDDEN`` to those who may not reach it. Devices belong to the user whose data they sync
(``gateway/sync/exchange.py``): a deviceId is always looked up among one user's devices, after
the rules here allowed the caller that user's data.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import BindParameter, ColumnElement, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal, Role
from gateway.db.models import AccessGrant, Project, ProjectMember
from gateway.errors import BadUserInput, Forbidden

# ---- roles


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"only admins may {action}")


def target_user(principal: Principal, user: str | None) -> str:
    """SenSeeAct's ``user`` parameter: omitted or empty means the caller."""
    return user if user else principal.user_id


# ---- projects and membership


async def is_member(session: AsyncSession, project_id: int, user_id: str) -> bool:
    found = await session.scalar(
        select(ProjectMember.user_id).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )
    return found is not None


#: The caller's user id, for statements built once that say whether the caller is a member.
CALLER: BindParameter[str] = bindparam("access_caller")


def caller_is_member(project_id: ColumnElement[int]) -> ColumnElement[bool]:
    """A column: whether the caller (bound as ``CALLER``) is a member of the row's project.
    A lookup by id fetches it with the row, saving ``reaches`` its own round trip."""
    return exists().where(ProjectMember.project_id == project_id, ProjectMember.user_id == CALLER)


async def reaches(
    session: AsyncSession, principal: Principal, project: Project, *, member: bool | None = None
) -> bool:
    """Whether ``principal`` may use ``project`` at all; ``member``: whether the caller is a
    member of it, when already known (``caller_is_member``)."""
    if principal.is_admin or project.open:
        return True
    if member is not None:
        return member
    assert project.id is not None
    return await is_member(session, project.id, principal.user_id)


async def authorize_project(
    session: AsyncSession, principal: Principal, project: Project, *, member: bool | None = None
) -> None:
    if not await reaches(session, principal, project, member=member):
        raise Forbidden(f"you are not a member of project {project.code!r}")


def reachable_projects(principal: Principal) -> ColumnElement[bool] | None:
    """A condition on ``Project`` for the projects ``principal`` reaches (None: all)."""
    if principal.is_admin:
        return None
    memberships = select(ProjectMember.project_id).where(ProjectMember.user_id == principal.user_id)
    return or_(Project.open.is_(True), Project.id.in_(memberships))  # type: ignore[attr-defined,union-attr]


def shown_members(
    principal: Principal, members: Iterable[str], grantors: Collection[str]
) -> list[str]:
    """The members of a project ``principal`` may see listed: all for admins; else themselves
    and, for professionals, the users who granted them access there (no answer reveals other
    users' ids)."""
    if principal.is_admin:
        return list(members)
    allowed = {principal.user_id}
    if principal.role is Role.PROFESSIONAL:
        allowed |= set(grantors)
    return [m for m in members if m in allowed]


# ---- user data


def may_access_user_data(principal: Principal, user_id: str, *, granted: bool) -> bool:
    """Whether ``principal`` may read and write ``user_id``'s data in a project both reach,
    where ``granted`` says if ``user_id`` granted ``principal`` access there."""
    if principal.role is Role.ADMIN or principal.user_id == user_id:
        return True
    return principal.role is Role.PROFESSIONAL and granted


async def authorize_user_data(
    session: AsyncSession,
    principal: Principal,
    project: Project,
    user_id: str,
    *,
    member: bool | None = None,
) -> None:
    """Raise ``Forbidden`` unless ``principal`` may access ``user_id``'s data in ``project``;
    ``member`` as for ``reaches``."""
    await authorize_project(session, principal, project, member=member)
    if not await _may_access(session, principal, project, user_id):
        raise Forbidden(f"you may not access the data of user {user_id!r} in {project.code!r}")


async def visible_users(
    session: AsyncSession, principal: Principal, project: Project
) -> set[str] | None:
    """Whose data ``principal`` may see in ``project`` (``Forbidden`` if it may not reach
    it): None for everyone (admins), else the caller and, for professionals, the users who
    granted them access and reach the project too."""
    await authorize_project(session, principal, project)
    if principal.role is Role.ADMIN:
        return None
    users = {principal.user_id}
    if principal.role is Role.PROFESSIONAL:
        users |= await _grantors(session, principal, project)
    return users


async def may_see_user(
    session: AsyncSession,
    principal: Principal,
    project: Project,
    user_id: str,
    *,
    member: bool | None = None,
) -> bool:
    """Whether ``principal`` may see ``user_id``'s data, for what is found by id (a sync, a
    run, a conflict), where "no" must look like "not there"; ``member`` as for ``reaches``."""
    return await reaches(session, principal, project, member=member) and await _may_access(
        session, principal, project, user_id
    )


async def _may_access(
    session: AsyncSession, principal: Principal, project: Project, user_id: str
) -> bool:
    """The data rule, in a project ``principal`` reaches: looks up a grant only when the
    answer depends on one."""
    granted = False
    if principal.role is Role.PROFESSIONAL and principal.user_id != user_id:
        granted = user_id in await _grantors(session, principal, project, [user_id])
    return may_access_user_data(principal, user_id, granted=granted)


async def _grantors(
    session: AsyncSession, principal: Principal, project: Project, among: list[str] | None = None
) -> set[str]:
    """The users who granted ``principal`` access in ``project`` and reach it themselves."""
    query = select(AccessGrant.user_id).where(
        AccessGrant.project_id == project.id, AccessGrant.grantee_id == principal.user_id
    )
    if among is not None:
        query = query.where(AccessGrant.user_id.in_(among))  # type: ignore[attr-defined]
    if not project.open:
        query = query.join(
            ProjectMember,
            (ProjectMember.project_id == AccessGrant.project_id)
            & (ProjectMember.user_id == AccessGrant.user_id),
        )
    return set(await session.scalars(query))


# ---- grants


def grant_owner(principal: Principal, user: str | None, action: str) -> str:
    """Whose grant ``principal`` gives or withdraws: their own, or anyone's for admins."""
    owner = target_user(principal, user)
    if owner != principal.user_id and not principal.is_admin:
        raise Forbidden(f"only admins may {action} for another user")
    return owner


def check_grantee(grantee: str, owner: str, known_role: str | None) -> None:
    """Access is granted to professionals (a user the gateway has not seen yet may become
    one); a user always has access to their own data."""
    if grantee == owner:
        raise BadUserInput("a user always has access to their own data", field="grantee")
    if known_role is not None and known_role != Role.PROFESSIONAL.value:
        raise BadUserInput(
            f"user {grantee!r} is a {known_role}; only professionals can be granted access",
            field="grantee",
        )


# ---- syncs and runs


def require_manage(principal: Principal, owner: str) -> None:
    """Syncs and runs are managed (created for a user, started, updated, ended) by the user
    whose data they sync, and by admins."""
    if not (principal.is_admin or principal.user_id == owner):
        raise Forbidden(f"only admins and {owner!r} may manage the syncs of {owner!r}'s data")
