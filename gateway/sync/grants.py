"""Access grants: a user lets a professional access their data in one project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select

from gateway.auth.access import authorize_project, check_grantee, grant_owner
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import insert
from gateway.db.models import AccessGrant, Project, User
from gateway.db.types import utcnow
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.projects import check_user_id, require_project


@dataclass(frozen=True, slots=True)
class Grant:
    project_id: int
    project: str
    user_id: str
    grantee_id: str
    granted_by: str
    created_at: datetime


async def grant_access(
    db: Database,
    principal: Principal,
    project_code: str,
    grantee: str,
    user: str | None = None,
    *,
    events: Events = NO_EVENTS,
) -> Grant:
    """Grant ``grantee`` access to ``user``'s data (default: the caller's) in a project the
    caller reaches; it counts while both reach the project. Granting again returns the
    existing grant. (The grantee's live dashboards may now show more.)"""
    owner = check_user_id(grant_owner(principal, user, "grant access"), "user")
    check_user_id(grantee, "grantee")
    async with db.transaction() as session:
        project = await require_project(session, project_code)
        await authorize_project(session, principal, project)
        check_grantee(
            grantee, owner, await session.scalar(select(User.role).where(User.id == grantee))
        )
        pair = {"project_id": project.id, "user_id": owner, "grantee_id": grantee}
        # Concurrent grants of the same pair: the first one inserts, the others find it.
        await session.execute(
            insert(session, AccessGrant)
            .values(**pair, granted_by=principal.user_id, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=list(pair))
        )
        existing = await session.scalar(
            select(AccessGrant).where(*(getattr(AccessGrant, k) == v for k, v in pair.items()))
        )
        assert existing is not None
        changes = Changes(access=[project.id])
        await events.staged(session, changes)
    await events.committed(changes)
    return _grant(project_code, existing)


async def revoke_access(
    db: Database,
    principal: Principal,
    project_code: str,
    grantee: str,
    user: str | None = None,
    *,
    events: Events = NO_EVENTS,
) -> bool:
    """Remove a grant; False when there was none. The grantee's live feeds of the project
    look again. A user may always withdraw their grants, even from a project they no longer
    reach."""
    owner = grant_owner(principal, user, "revoke access")
    async with db.transaction() as session:
        project = await require_project(session, project_code)
        result = await session.execute(
            delete(AccessGrant).where(
                AccessGrant.project_id == project.id,
                AccessGrant.user_id == owner,
                AccessGrant.grantee_id == grantee,
            )
        )
        removed = bool(result.rowcount)  # type: ignore[attr-defined]
        changes = Changes(access=[project.id] if removed else [])
        await events.staged(session, changes)
    await events.committed(changes)
    return removed


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


async def get_grant(
    db: Database, principal: Principal, project_code: str, user_id: str, grantee_id: str
) -> Grant | None:
    """One grant, for the user who gave it, its grantee and admins (those who see it in
    ``me.grants`` or may give it); None for anyone else, as if there were none."""
    if not (principal.is_admin or principal.user_id in (user_id, grantee_id)):
        return None
    async with db.session() as session:
        found = await session.scalar(
            select(AccessGrant)
            .join(Project, Project.id == AccessGrant.project_id)
            .where(
                Project.code == project_code,
                AccessGrant.user_id == user_id,
                AccessGrant.grantee_id == grantee_id,
            )
        )
    return _grant(project_code, found) if found is not None else None


def _grant(project_code: str, row: AccessGrant) -> Grant:
    return Grant(
        project_id=row.project_id,
        project=project_code,
        user_id=row.user_id,
        grantee_id=row.grantee_id,
        granted_by=row.granted_by,
        created_at=row.created_at,
    )
