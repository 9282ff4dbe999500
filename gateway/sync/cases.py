"""CSPro's cases pending synchronization towards a device, and a case's status: where its
current version stands with the device (see ``pending.py`` for what pending means).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import ProjectTable, Record, SyncEvent
from gateway.errors import NotFound
from gateway.sync import keyset
from gateway.sync.devices import named_device
from gateway.sync.exchange import Direction
from gateway.sync.history import SyncEventInfo, device_events, to_event
from gateway.sync.pending import count_pending, pending_query


@dataclass(frozen=True, slots=True)
class PendingCase:
    """CSPro's case pending synchronization."""

    key: str
    position: int
    uuid: str
    table: str
    record_id: str


def dashed(record_id: str) -> str:
    return str(uuid.UUID(hex=record_id))


async def cases_pending_sync(
    db: Database,
    principal: Principal,
    project: str,
    device_name: str,
    *,
    user: str | None = None,
    first: int = 50,
    after: str | None = None,
) -> tuple[list[tuple[str, PendingCase]], bool]:
    """CSPro's cases pending synchronization towards ``user``'s device known by
    ``device_name``: (cursor, case) pairs by record, and whether more follow."""
    keyset.check_first(first)
    async with db.session() as session:
        device = await named_device(session, principal, project, user, device_name)
        query = pending_query(device.project_id, device).order_by(Record.id).limit(first + 1)
        if after is not None:
            query = query.where(Record.id > keyset.decode(after, keyset.CursorKind.PENDING_CASES))  # type: ignore[operator]
        rows = (await session.execute(query)).all()
    cases = [
        (keyset.encode(r.id or 0, keyset.CursorKind.PENDING_CASES), to_case(r, table))
        for r, table in rows[:first]
    ]
    return cases, len(rows) > first


async def pending_count(
    db: Database, principal: Principal, project: str, device_name: str, user: str | None = None
) -> int:
    async with db.session() as session:
        device = await named_device(session, principal, project, user, device_name)
        return await count_pending(session, device.project_id, device)


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case: PendingCase
    sync_history: list[SyncEventInfo]


async def case_status(
    db: Database,
    principal: Principal,
    project: str,
    key: str,
    device_name: str,
    user: str | None = None,
) -> CaseStatus:
    """A case of ``user``'s data and the exchange in which its current version reached or came
    from the device (empty while it is pending)."""
    async with db.session() as session:
        device = await named_device(session, principal, project, user, device_name)
        found = device.project_id
        record = await session.scalar(
            select(Record)
            .where(
                Record.project_id == found,
                Record.user_id == device.owner_id,
                Record.record_key == key,
            )
            .order_by(Record.table_id)
            .limit(1)
        )
        if record is None:
            raise NotFound(f"no case with key {key!r}", field="key")
        table = await session.scalar(
            select(ProjectTable.name).where(ProjectTable.id == record.table_id)
        )
        pending = await session.scalar(
            pending_query(found, device).where(Record.id == record.id).with_only_columns(Record.id)
        )
        history: list[SyncEventInfo] = []
        if pending is None:
            # The put that brought it from the device, or the first get after it changed.
            direction = Direction.PUT if record.device_id == device.device_id else Direction.GET
            event = await session.scalar(
                device_events(device)
                .where(SyncEvent.direction == direction.value, SyncEvent.time >= record.updated_at)
                .order_by(SyncEvent.id)
                .limit(1)
            )
            history = [to_event(event)] if event is not None else []
    return CaseStatus(to_case(record, table or ""), history)


def to_case(record: Record, table: str) -> PendingCase:
    return PendingCase(
        key=record.record_key,
        position=record.position,
        uuid=dashed(record.record_id),
        table=table,
        record_id=record.record_id,
    )
