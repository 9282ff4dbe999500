"""Access grants: a user lets a professional access their data in one project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select

from gateway.auth.access import target_user
from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.models import AccessGrant, Project, User
from gateway.errors import BadUserInput, Forbidden
from gateway.sync.projects import require_project

MAX_USER_ID_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Grant:
    project: str
    user_id: str
    grantee_id: str
    granted_by: str
    created_at: datetime


def _check_user_id(value: str, field: str) -> str:
    if not value or not value.strip() or len(value) > MAX_USER_ID_LENGTH:
        raise BadUserInput(f"{field} must be a user id of 1 to {MAX_USER_ID_LENGTH} characters")
    return value


def _owner(principal: Principal, user: str | None, action: str) -> str:
    owner = _check_user_id(target_user(principal, user), "user")
    if owner != principal.user_id and not principal.is_admin:
        raise Forbidden(f"only admins may {action} for another user")
    return owner


async def grant_access(
    db: Database, principal: Principal, project_code: str, grantee: str, user: str | None = None
) -> Grant:
    """Grant ``grantee`` access to ``user``'s data (default: the caller's). Granting again
    returns the existing grant."""
    owner = _owner(principal, user, "grant access")
    _check_user_id(grantee, "grantee")
    if grantee == owner:
        raise BadUserInput("a user always has access to their own data", field="grantee")
    async with db.transaction() as session:
        project = await require_project(session, project_code)
        role = await session.scalar(select(User.role).where(User.id == grantee))
        if role is not None and role != Role.PROFESSIONAL.value:
            raise BadUserInput(
                f"user {grantee!r} is a {role}; only professionals can be granted access",
                field="grantee",
            )
        existing = await session.scalar(
            select(AccessGrant).where(
                AccessGrant.project_id == project.id,
                AccessGrant.user_id == owner,
                AccessGrant.grantee_id == grantee,
            )
        )
        if existing is None:
            existing = AccessGrant(
                project_id=project.id,
                user_id=owner,
                grantee_id=grantee,
                granted_by=principal.user_id,
            )
            session.add(existing)
    return _grant(project_code, existing)


async def revoke_access(
    db: Database, principal: Principal, project_code: str, grantee: str, user: str | None = None
) -> bool:
    """Remove a grant; ``False`` when there was none."""
    owner = _owner(principal, user, "revoke access")
    async with db.transaction() as session:
        project = await require_project(session, project_code)
        result = await session.execute(
            delete(AccessGrant).where(
                AccessGrant.project_id == project.id,
                AccessGrant.user_id == owner,
                AccessGrant.grantee_id == grantee,
            )
        )
    return bool(result.rowcount)


async def grants_involving(db: Database, user_id: str) -> list[Grant]:
    """Grants the user gave and grants the user received, oldest first."""
    async with db.session() as session:
        rows = await session.execute(
            select(AccessGrant, Project.code)
            .join(Project, Project.id == AccessGrant.project_id)
            .where(or_(AccessGrant.user_id == user_id, AccessGrant.grantee_id == user_id))
            .order_by(AccessGrant.created_at, AccessGrant.id)
        )
        return [_grant(code, grant) for grant, code in rows]


def _grant(project_code: str, row: AccessGrant) -> Grant:
    return Grant(
        project=project_code,
        user_id=row.user_id,
        grantee_id=row.grantee_id,
        granted_by=row.granted_by,
        created_at=row.created_at,
    )
