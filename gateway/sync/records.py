"""The current records of a table, for frontends that show the data itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Record
from gateway.sync import keyset
from gateway.sync.projects import open_user_data
from gateway.sync.selection import check_known


@dataclass(frozen=True, slots=True)
class RecordView:
    table: str
    user: str
    record_id: str
    key: str
    data: dict[str, Any] | None
    deleted: bool
    position: int
    device_id: str | None
    created_at: datetime
    updated_at: datetime
    cursor: str


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[RecordView]
    has_next_page: bool


def encode_key(row_id: int) -> str:
    return keyset.encode(row_id, keyset.CursorKind.RECORDS)


async def list_records(
    db: Database,
    principal: Principal,
    project: str,
    table: str,
    *,
    user: str | None = None,
    first: int = 50,
    after: str | None = None,
    include_deleted: bool = False,
) -> RecordPage:
    keyset.check_first(first)
    after_id = keyset.decode(after, keyset.CursorKind.RECORDS) if after else 0
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, target, catalog = data.project_id, data.user, data.tables
        check_known(catalog, [table], "table")
        query = (
            select(*Record.__table__.c)  # type: ignore[attr-defined]
            .where(
                Record.project_id == found_id,
                Record.user_id == target,
                Record.table_id == catalog[table].id,
                Record.id > after_id,  # type: ignore[operator]
            )
            .order_by(Record.id)  # type: ignore[arg-type]
            .limit(first + 1)
        )
        if not include_deleted:
            query = query.where(Record.deleted.is_(False))  # type: ignore[attr-defined]
        rows = (await session.execute(query)).all()
    page = [_view(table, target, r) for r in rows[:first]]
    return RecordPage(records=page, has_next_page=len(rows) > first)


async def get_record(
    db: Database, principal: Principal, project: str, table: str, user: str, record_id: str
) -> RecordView | None:
    """One record of ``user``'s, deleted or not, under the rules of ``list_records``; None when
    there is none (an unknown table included)."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found = data.tables.get(table)
        if found is None:
            return None
        row = (
            await session.execute(
                select(*Record.__table__.c).where(  # type: ignore[attr-defined]
                    Record.table_id == found.id,
                    Record.user_id == data.user,
                    Record.record_id == record_id,
                    Record.project_id == data.project_id,
                )
            )
        ).first()
    return _view(table, data.user, row) if row is not None else None


def _view(table: str, user: str, r: Any) -> RecordView:
    """``r``: a row of the records table's columns."""
    return RecordView(
        table=table,
        user=user,
        record_id=r.record_id,
        key=r.record_key,
        data=r.data,
        deleted=r.deleted,
        position=r.position,
        device_id=r.device_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
        cursor=encode_key(r.id),
    )
