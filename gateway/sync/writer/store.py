"""Storing a played batch: the log's rows, the records' current state, the write progress, and
reading that progress back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values, insert, is_postgresql
from gateway.db.models import Action, Record, WriteProgress
from gateway.sync.actions import ActionType
from gateway.sync.projects import open_user_data
from gateway.sync.selection import CatalogTable, select_tables
from gateway.sync.validation import record_key
from gateway.sync.writer.model import NO_DEVICE, Checked, WriteMark, by_table, chunks
from gateway.sync.writer.play import Final

# PostgreSQL: a batch's rows go in one statement each, as arrays unnested on the server (one
# prepared statement whatever the batch's size; a VALUES list per size was slower), the
# batch's constants once, and the records' JSON as text cast there.
_INSERT_ACTIONS = text("""
INSERT INTO actions (project_id, user_id, device_id, stored_at, table_id, action, record_id,
                     json_data, sample_time, time, action_order, source, author, superseded)
SELECT CAST(:project_id AS integer), CAST(:user_id AS varchar), CAST(:device_id AS varchar),
       CAST(:now AS timestamptz), a.*
FROM unnest(CAST(:table_ids AS integer[]), CAST(:actions AS varchar[]),
            CAST(:record_ids AS varchar[]), CAST(:json_data AS text[]),
            CAST(:sample_times AS bigint[]), CAST(:times AS bigint[]),
            CAST(:orders AS integer[]), CAST(:sources AS varchar[]),
            CAST(:authors AS varchar[]), CAST(:superseded AS boolean[])) AS a
RETURNING id, table_id, record_id, time, action_order
""")
_UPSERT_RECORDS = text("""
INSERT INTO records (project_id, user_id, device_id, created_at, updated_at, table_id,
                     record_id, record_key, data, deleted, position)
SELECT CAST(:project_id AS integer), CAST(:user_id AS varchar), CAST(:device_id AS varchar),
       CAST(:now AS timestamptz), CAST(:now AS timestamptz), r.table_id, r.record_id,
       r.record_key, CAST(r.data AS jsonb), r.deleted, r.position
FROM unnest(CAST(:table_ids AS integer[]), CAST(:record_ids AS varchar[]),
            CAST(:record_keys AS varchar[]), CAST(:data AS text[]),
            CAST(:deleted AS boolean[]), CAST(:positions AS bigint[]))
     AS r(table_id, record_id, record_key, data, deleted, position)
ON CONFLICT (project_id, user_id, table_id, record_id) DO UPDATE SET
    record_key = excluded.record_key, data = excluded.data, deleted = excluded.deleted,
    position = excluded.position, xid = excluded.xid, device_id = excluded.device_id,
    updated_at = excluded.updated_at
""")  # ``excluded.xid`` is the column default: this transaction's id


# PostgreSQL: the records a batch touches, each looked up and locked on its own through the
# records' unique index, the only one that starts with the table (see ``checks._STORED``), in
# the order of the arrays: sorted, the one lock order of every batch.
_LOCK_RECORDS = text("""
SELECT r.* FROM unnest(CAST(:tables AS integer[]), CAST(:records AS varchar[]))
     AS k(table_id, record_id)
CROSS JOIN LATERAL (
    SELECT * FROM records
    WHERE table_id = k.table_id AND user_id = :user_id AND record_id = k.record_id
    FOR UPDATE
) AS r
""")


def _key_arrays(keys: Iterable[tuple[int, str]]) -> dict[str, list[Any]]:
    """The distinct (table, record) keys as two arrays, sorted as ``by_table`` sorts them."""
    pairs = [(t, r) for t, ids in by_table(keys).items() for r in ids]
    return {"tables": [t for t, _ in pairs], "records": [r for _, r in pairs]}


async def lock_records(
    session: AsyncSession, project_id: int, user: str, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], Record]:
    """The current records the batch touches, locked against concurrent writers (PostgreSQL;
    SQLite writers are serialized already), in one order for every batch."""
    found: dict[tuple[int, str], Record] = {}
    if is_postgresql(session):
        arrays = _key_arrays(keys)
        if arrays["tables"]:
            query = select(Record).from_statement(_LOCK_RECORDS)
            rows = await session.scalars(query, {"user_id": user, **arrays})
            found.update({(r.table_id, r.record_id): r for r in rows})
        return found
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


async def insert_actions(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    new: list[Checked],
    superseded: set[int],
    now: Any,
) -> dict[int, int]:
    """Append the new actions to the log: each one's log position (id) by its index."""
    if not is_postgresql(session):
        rows = [action_row(project_id, user, device_id, c, now, c.index in superseded) for c in new]
        stmt = insert(session, Action).returning(Action.id, sort_by_parameter_order=True)
        ids = (await session.execute(stmt, rows)).scalars().all()
        return {c.index: action_id for c, action_id in zip(new, ids, strict=True)}
    result = await session.execute(
        _INSERT_ACTIONS,
        {
            "project_id": project_id,
            "user_id": user,
            "device_id": device_id,
            "now": now,
            "table_ids": [c.table.id for c in new],
            "actions": [c.action.value for c in new],
            "record_ids": [c.record_id for c in new],
            "json_data": [c.source.json_data if c.data is not None else None for c in new],
            "sample_times": [c.sample_time for c in new],
            "times": [c.source.time for c in new],
            "orders": [c.source.order for c in new],
            "sources": [c.source.source for c in new],
            "authors": [c.source.author for c in new],
            "superseded": [c.index in superseded for c in new],
        },
    )
    ids = {(t, r, time, order): action_id for action_id, t, r, time, order in result}
    return {c.index: ids[c.identity] for c in new}


def _json_text(c: Checked, data: dict[str, Any] | None) -> str:
    """A record's data as JSON text: an INSERT's own jsonData as the device sent it (it was
    parsed into exactly this), anything merged serialized as before."""
    if c.action is ActionType.INSERT and data is c.data and c.source.json_data is not None:
        return c.source.json_data
    return json.dumps(data)


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
    ordered = [final[key] for key in sorted(final)]  # one lock order for every batch
    if is_postgresql(session):
        await session.execute(
            _UPSERT_RECORDS,
            {
                "project_id": project_id,
                "user_id": user,
                "device_id": device_id,
                "now": now,
                "table_ids": [c.table.id for c, _, _ in ordered],
                "record_ids": [c.record_id for c, _, _ in ordered],
                "record_keys": [record_key(c.table.spec, c.record_id, d) for c, d, _ in ordered],
                "data": [_json_text(c, data) for c, data, _ in ordered],
                "deleted": [deleted for _, _, deleted in ordered],
                "positions": [position[c.index] for c, _, _ in ordered],
            },
        )
        return
    stmt = insert(session, Record)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Record.project_id, Record.user_id, Record.table_id, Record.record_id],
        set_={
            name: getattr(stmt.excluded, name)
            # ``excluded.xid`` is the column default (0 on SQLite)
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
            for c, data, deleted in ordered
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
