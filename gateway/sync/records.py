"""The current records of a table, for frontends that show the data itself."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Record
from gateway.errors import BadUserInput
from gateway.sync.projects import open_user_data
from gateway.sync.selection import check_known

MAX_PAGE = 500


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
    return base64.urlsafe_b64encode(f"r:{row_id}".encode()).decode().rstrip("=")


def decode_key(cursor: str) -> int:
    try:
        kind, _, value = (
            base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        ).partition(":")
        if kind != "r":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadUserInput(f"invalid cursor {cursor!r}", field="after") from exc


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
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    after_id = decode_key(after) if after else 0
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, target, catalog = data.project_id, data.user, data.tables
        check_known(catalog, [table], "table")
        query = (
            select(Record)
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
        rows = (await session.scalars(query)).all()
    page = [
        RecordView(
            table=table,
            user=target,
            record_id=r.record_id,
            key=r.record_key,
            data=r.data,
            deleted=r.deleted,
            position=r.position,
            device_id=r.device_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
            cursor=encode_key(r.id or 0),
        )
        for r in rows[:first]
    ]
    return RecordPage(records=page, has_next_page=len(rows) > first)
