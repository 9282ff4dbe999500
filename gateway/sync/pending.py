"""What is pending towards a device: records whose current version it has not received.

A device's reads move its delivered progress per table forward (what it received); with
``acknowledge_progress`` it can state what it actually applied. A record is pending towards a
device when its last change lies after that progress in the log and did not come from the device
itself. (What waits on the device to be sent up is only known from its own ``pendingUp``.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Select, and_, func, or_, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import insert
from gateway.db.models import DeliveredProgress, Device, ProjectTable, Record
from gateway.db.types import utcnow
from gateway.errors import NotFound
from gateway.sync.cursor import Cursor, Position
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.projects import open_user_data
from gateway.sync.selection import check_known


async def mark_delivered(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str,
    positions: Mapping[int, Position],
    *,
    forward_only: bool = True,
) -> None:
    """Record what ``user``'s device has received per table. Reads only move it forward; an
    acknowledgement sets it to what the device says it applied."""
    if not positions:
        return
    stmt = insert(session, DeliveredProgress)
    moved = {
        "xid": stmt.excluded.xid,
        "position": stmt.excluded.position,
        "updated_at": stmt.excluded.updated_at,
    }
    keys = [
        DeliveredProgress.project_id,
        DeliveredProgress.user_id,
        DeliveredProgress.device_id,
        DeliveredProgress.table_id,
    ]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_=moved,
        where=(
            tuple_(stmt.excluded.xid, stmt.excluded.position)
            > tuple_(DeliveredProgress.xid, DeliveredProgress.position)
        )
        if forward_only
        else None,
    )
    now = utcnow()
    await session.execute(
        stmt,
        [
            {
                "project_id": project_id,
                "user_id": user,
                "device_id": device_id,
                "table_id": table_id,
                "xid": p.xid,
                "position": p.id,
                "updated_at": now,
            }
            for table_id, p in sorted(positions.items())
        ],
    )


def pending_query(project_id: int, device: Device) -> Select[tuple[Record, str]]:
    """The device owner's records whose current version has not reached the device."""
    delivered = and_(
        DeliveredProgress.project_id == Record.project_id,
        DeliveredProgress.user_id == Record.user_id,
        DeliveredProgress.device_id == device.device_id,
        DeliveredProgress.table_id == Record.table_id,
    )
    return (
        select(Record, ProjectTable.name)
        .join(ProjectTable, ProjectTable.id == Record.table_id)
        .outerjoin(DeliveredProgress, delivered)
        .where(
            Record.project_id == project_id,
            Record.user_id == device.owner_id,
            or_(Record.device_id.is_(None), Record.device_id != device.device_id),  # type: ignore[union-attr]
            or_(
                DeliveredProgress.table_id.is_(None),  # type: ignore[attr-defined]
                tuple_(Record.xid, Record.position)
                > tuple_(DeliveredProgress.xid, DeliveredProgress.position),
            ),
        )
    )


async def pending_counts(
    session: AsyncSession, project_id: int, owners: Collection[str] | None = None
) -> dict[tuple[str, str], int]:
    """Records pending towards each device of the project, by (owner, deviceId) (of
    ``owners``' devices only, when given), in one query: the status feed runs this on every
    change."""
    delivered = and_(
        DeliveredProgress.project_id == Device.project_id,
        DeliveredProgress.user_id == Device.owner_id,
        DeliveredProgress.device_id == Device.device_id,
        DeliveredProgress.table_id == Record.table_id,
    )
    rows = await session.execute(
        select(Device.owner_id, Device.device_id, func.count(Record.id))
        .join(
            Record,
            and_(
                Record.project_id == Device.project_id,
                Record.user_id == Device.owner_id,
                or_(Record.device_id.is_(None), Record.device_id != Device.device_id),  # type: ignore[union-attr]
            ),
        )
        .outerjoin(DeliveredProgress, delivered)
        .where(
            Device.project_id == project_id,
            Device.owner_id.in_(owners) if owners is not None else true(),  # type: ignore[attr-defined]
            or_(
                DeliveredProgress.table_id.is_(None),  # type: ignore[attr-defined]
                tuple_(Record.xid, Record.position)
                > tuple_(DeliveredProgress.xid, DeliveredProgress.position),
            ),
        )
        .group_by(Device.owner_id, Device.device_id)
    )
    return {(owner, device_id): count for owner, device_id, count in rows.all()}


async def count_pending(session: AsyncSession, project_id: int, device: Device) -> int:
    query = pending_query(project_id, device).subquery()
    return await session.scalar(select(func.count()).select_from(query)) or 0


async def acknowledge_progress(
    db: Database,
    principal: Principal,
    project: str,
    device_id: str,
    progress: Mapping[str, str],
    user: str | None = None,
    *,
    events: Events = NO_EVENTS,
) -> None:
    """The device (of ``user``, omitted: the caller) states what it has applied: its delivered
    progress becomes that."""
    async with db.transaction() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, owner, catalog = data.project_id, data.user, data.tables
        check_known(catalog, progress, "progress")
        device = await session.get(Device, (found_id, owner, device_id))
        if device is None:
            raise NotFound(f"device {device_id!r} is not known for {owner!r}", field="deviceId")
        positions = {
            catalog[table].id: Cursor.decode(token).position for table, token in progress.items()
        }
        await mark_delivered(session, found_id, owner, device_id, positions, forward_only=False)
        changes = Changes(statuses=[project])
        await events.staged(session, changes)
    await events.committed(changes)
