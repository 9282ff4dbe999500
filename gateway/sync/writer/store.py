"""Storing a played batch: the log's rows, the records' current state, the write progress, and
reading that progress back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values, insert
from gateway.db.models import Record, WriteProgress
from gateway.sync.projects import open_user_data
from gateway.sync.selection import CatalogTable, select_tables
from gateway.sync.validation import record_key
from gateway.sync.writer.model import NO_DEVICE, Checked, WriteMark, by_table, chunks
from gateway.sync.writer.play import Final


async def lock_records(
    session: AsyncSession, project_id: int, user: str, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], Record]:
    """The current records the batch touches, locked against concurrent writers (PostgreSQL;
    SQLite writers are serialized already), in one order for every batch."""
    found: dict[tuple[int, str], Record] = {}
    for table_id, record_ids in by_table(keys).items():
        for chunk in chunks(record_ids):
            rows = await session.scalars(
                select(Record)
                .where(
                    Record.project_id == project_id,
                    Record.user_id == user,
                    Record.table_id == table_id,
                    in_values(session, Record.record_id, chunk),
                )
                .order_by(Record.record_id)
                .with_for_update()
            )
            found.update({(r.table_id, r.record_id): r for r in rows})
    return found


def action_row(
    project_id: int, user: str, device_id: str | None, c: Checked, now: Any, superseded: bool
) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "table_id": c.table.id,
        "user_id": user,
        "action": c.action.value,
        "record_id": c.record_id,
        "json_data": c.source.json_data if c.data is not None else None,
        "sample_time": c.sample_time,
        "time": c.source.time,
        "action_order": c.source.order,
        "source": c.source.source,
        "author": c.source.author,
        "device_id": device_id,
        "superseded": superseded,
        "stored_at": now,
    }


async def upsert_records(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    final: Final,
    position: dict[int, int],
    now: Any,
) -> None:
    if not final:  # every action was superseded (an empty executemany would insert one row)
        return
    stmt = insert(session, Record)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Record.project_id, Record.user_id, Record.table_id, Record.record_id],
        set_={
            name: getattr(stmt.excluded, name)
            # ``excluded.xid`` is the column default: this transaction's id (0 on SQLite)
            for name in (
                "record_key",
                "data",
                "deleted",
                "position",
                "xid",
                "device_id",
                "updated_at",
            )
        },
    )
    await session.execute(
        stmt,
        [
            {
                "project_id": project_id,
                "table_id": c.table.id,
                "user_id": user,
                "record_id": c.record_id,
                "record_key": record_key(c.table.spec, c.record_id, data),
                "data": data,
                "deleted": deleted,
                "position": position[c.index],
                "device_id": device_id,
                "created_at": now,
                "updated_at": now,
            }
            for key, (c, data, deleted) in sorted(final.items(), key=lambda item: item[0])
        ],
    )


async def advance_write_progress(
    session: AsyncSession, project_id: int, user: str, device_id: str | None, new: list[Checked]
) -> None:
    """One row per user, table and device: concurrent batches from different devices never
    wait on each other here (a shared all-devices row would make them queue until commit)."""
    latest: dict[int, tuple[int, int]] = {}
    for c in new:
        mark = (c.source.time, c.source.order)
        latest[c.table.id] = max(latest.get(c.table.id, mark), mark)
    stmt = insert(session, WriteProgress)
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            WriteProgress.project_id,
            WriteProgress.user_id,
            WriteProgress.table_id,
            WriteProgress.device_id,
        ],
        set_={"time": stmt.excluded.time, "action_order": stmt.excluded.action_order},
        where=tuple_(stmt.excluded.time, stmt.excluded.action_order)
        > tuple_(WriteProgress.time, WriteProgress.action_order),
    )
    await session.execute(
        stmt,
        [
            {
                "project_id": project_id,
                "user_id": user,
                "table_id": table_id,
                "device_id": device_id or NO_DEVICE,
                "time": time,
                "action_order": order,
            }
            for table_id, (time, order) in sorted(latest.items())  # one lock order for all
        ],
    )


async def marks(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    tables: Sequence[CatalogTable],
) -> list[WriteMark]:
    """Per table, the latest (time, order) written by the device, or by any device."""
    if not tables:
        return []
    query = select(WriteProgress.table_id, WriteProgress.time, WriteProgress.action_order).where(
        WriteProgress.project_id == project_id,
        WriteProgress.user_id == user,
        WriteProgress.table_id.in_([t.id for t in tables]),
    )
    if device_id is not None:
        query = query.where(WriteProgress.device_id == device_id)
    found: dict[int, tuple[int, int]] = {}
    for r in await session.execute(query):
        mark = (r.time, r.action_order)
        found[r.table_id] = max(found.get(r.table_id, mark), mark)
    return [
        WriteMark(t.name, user, *found.get(t.id, (None, None)))  # type: ignore[arg-type]
        for t in tables
    ]


async def write_progress(
    db: Database,
    principal: Principal,
    project: str,
    user: str | None = None,
    device_id: str | None = None,
    include_tables: Sequence[str] | None = None,
    exclude_tables: Sequence[str] | None = None,
) -> list[WriteMark]:
    """SenSeeAct's get-progress: per selected table, the latest (time, order) written for the
    user (by that device, when one is given); null for tables never written."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, target, catalog = data.project_id, data.user, data.tables
        tables = list(select_tables(catalog, include_tables, exclude_tables).values())
        return await marks(session, found_id, target, device_id, tables)
