"""SenSeeAct's access rule, in one place for every feature that reads or writes user data:

- patients: their own data only;
- professionals: their own data, and the data of users who granted them access in the project;
- admins: everything.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal, Role
from gateway.db.models import AccessGrant
from gateway.errors import Forbidden


def may_access_user_data(principal: Principal, user_id: str, *, granted: bool) -> bool:
    """Whether ``principal`` may read and write ``user_id``'s data in a project where
    ``granted`` says if ``user_id`` granted ``principal`` access."""
    if principal.role is Role.ADMIN or principal.user_id == user_id:
        return True
    return principal.role is Role.PROFESSIONAL and granted


def target_user(principal: Principal, user: str | None) -> str:
    """SenSeeAct's ``user`` parameter: omitted or empty means the caller."""
    return user if user else principal.user_id


async def authorize_user_data(
    session: AsyncSession, principal: Principal, project_id: int, user_id: str
) -> None:
    """Raise ``Forbidden`` unless ``principal`` may access ``user_id``'s data in the project.
    Looks up a grant only when the answer depends on one."""
    granted = False
    if principal.role is Role.PROFESSIONAL and principal.user_id != user_id:
        granted = await has_grant(session, project_id, user_id, principal.user_id)
    if not may_access_user_data(principal, user_id, granted=granted):
        raise Forbidden(f"user {principal.user_id!r} may not access the data of user {user_id!r}")


async def has_grant(session: AsyncSession, project_id: int, user_id: str, grantee_id: str) -> bool:
    found = await session.scalar(
        select(AccessGrant.id).where(
            AccessGrant.project_id == project_id,
            AccessGrant.user_id == user_id,
            AccessGrant.grantee_id == grantee_id,
        )
    )
    return found is not None


async def visible_users(
    session: AsyncSession, principal: Principal, project_id: int
) -> set[str] | None:
    """Whose data ``principal`` may see in a project: None for everyone (admins), else the
    caller and, for professionals, the users who granted them access."""
    if principal.role is Role.ADMIN:
        return None
    users = {principal.user_id}
    if principal.role is Role.PROFESSIONAL:
        grantors = await session.scalars(
            select(AccessGrant.user_id).where(
                AccessGrant.project_id == project_id,
                AccessGrant.grantee_id == principal.user_id,
            )
        )
        users.update(grantors)
    return users
