"""Push registrations: which device token to wake for which user's tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import insert
from gateway.db.models import PushRegistration
from gateway.db.types import utcnow
from gateway.sync.projects import open_user_data
from gateway.sync.selection import check_known
from gateway.sync.text import check_length

MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class Registration:
    project: str
    user: str
    device_id: str
    token: str
    include_tables: list[str] | None
    exclude_tables: list[str] | None
    created_at: datetime
    updated_at: datetime

    def covers(self, table: str) -> bool:
        """SenSeeAct's rule: no include list means all tables; exclude always wins."""
        if self.exclude_tables and table in self.exclude_tables:
            return False
        return not self.include_tables or table in self.include_tables


async def register_push(
    db: Database,
    principal: Principal,
    project: str,
    *,
    token: str,
    device_id: str,
    user: str | None = None,
    include_tables: Sequence[str] | None = None,
    exclude_tables: Sequence[str] | None = None,
) -> Registration:
    """Register (or replace) the push token of one device of a user in a project."""
    check_length("fcmToken", token, MAX_TOKEN_LENGTH)
    check_length("deviceId", device_id, 255)
    now = utcnow()
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, owner, catalog = data.project_id, data.user, data.tables
        check_known(catalog, include_tables or (), "includeTables")
        check_known(catalog, exclude_tables or (), "excludeTables")
        values = {
            "project_id": found_id,
            "user_id": owner,
            "device_id": device_id,
            "token": token,
            "include_tables": list(include_tables) if include_tables else None,
            "exclude_tables": list(exclude_tables) if exclude_tables else None,
            "created_at": now,
            "updated_at": now,
        }
        stmt = insert(session, PushRegistration).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    PushRegistration.project_id,
                    PushRegistration.user_id,
                    PushRegistration.device_id,
                ],
                set_={
                    name: getattr(stmt.excluded, name)
                    for name in ("token", "include_tables", "exclude_tables", "updated_at")
                },
            )
        )
        row = await session.get(PushRegistration, (found_id, owner, device_id))
        assert row is not None
        await session.refresh(row)
        return _registration(project, row)


async def unregister_push(
    db: Database, principal: Principal, project: str, *, device_id: str, user: str | None = None
) -> bool:
    """Remove a device's registration; ``False`` when there was none."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, owner = data.project_id, data.user
        result = await session.execute(
            delete(PushRegistration).where(
                PushRegistration.project_id == found_id,
                PushRegistration.user_id == owner,
                PushRegistration.device_id == device_id,
            )
        )
    return bool(result.rowcount)


async def get_registration(
    db: Database, principal: Principal, project: str, *, user: str, device_id: str
) -> Registration | None:
    """``user``'s registration of a device, for those who may register it; None when there
    is none."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        row = await session.get(PushRegistration, (data.project_id, data.user, device_id))
        return _registration(project, row) if row is not None else None


async def registrations_of(
    db: Database, project_id: int, project: str, user: str
) -> list[Registration]:
    async with db.session() as session:
        rows = await session.scalars(
            select(PushRegistration).where(
                PushRegistration.project_id == project_id, PushRegistration.user_id == user
            )
        )
        return [_registration(project, r) for r in rows]


async def forget_token(
    db: Database, project_id: int, user: str, device_id: str, token: str
) -> None:
    """Remove a registration whose token the push service no longer knows, unless the device
    registered a new token meanwhile."""
    async with db.transaction() as session:
        await session.execute(
            delete(PushRegistration).where(
                PushRegistration.project_id == project_id,
                PushRegistration.user_id == user,
                PushRegistration.device_id == device_id,
                PushRegistration.token == token,
            )
        )


def _registration(project: str, row: PushRegistration) -> Registration:
    return Registration(
        project=project,
        user=row.user_id,
        device_id=row.device_id,
        token=row.token,
        include_tables=row.include_tables,
        exclude_tables=row.exclude_tables,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
