"""Storing a played batch: the log's rows, the records' current state, the write progress, and
reading that progress back."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import TextClause, bindparam, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values, insert, is_postgresql
from gateway.db.models import Action, Record, WriteProgress
from gateway.db.types import UTCDateTime
from gateway.sync.actions import ActionType
from gateway.sync.projects import open_user_data
from gateway.sync.selection import CatalogTable, select_tables
from gateway.sync.validation import record_key
from gateway.sync.writer.model import NO_DEVICE, Checked, WriteMark, by_table, chunks
from gateway.sync.writer.play import Final

_ACTIONS = (  # column, its type on PostgreSQL, its parameter: a batch's actions
    ("table_id", "integer", "table_ids"),
    ("action", "varchar", "actions"),
    ("record_id", "varchar", "record_ids"),
    ("json_data", "text", "json_data"),
    ("sample_time", "bigint", "sample_times"),
    ("time", "bigint", "times"),
    ("action_order", "integer", "orders"),
    ("source", "varchar", "sources"),
    ("author", "varchar", "authors"),
    ("superseded", "boolean", "superseded"),
    ("written_by", "varchar", "written_by"),
)
_RECORDS = (  # the same for a batch's records; ``data`` is JSON text
    ("table_id", "integer", "table_ids"),
    ("record_id", "varchar", "record_ids"),
    ("record_key", "varchar", "record_keys"),
    ("data", "jsonb", "data"),
    ("deleted", "boolean", "deleted"),
    ("position", "bigint", "positions"),
)
_WRITER = (  # what every row of a batch shares
    ("project_id", "integer", "project_id"),
    ("user_id", "varchar", "user_id"),
    ("device_id", "varchar", "device_id"),
)
_UPDATE_RECORD = """
ON CONFLICT (project_id, user_id, table_id, record_id) DO UPDATE SET
    record_key = excluded.record_key, data = excluded.data, deleted = excluded.deleted,
    position = excluded.position, xid = excluded.xid, device_id = excluded.device_id,
    updated_at = excluded.updated_at
"""  # ``excluded.xid`` is the column default: this transaction's id (0 on SQLite)


def _insert(
    table: str, times: Sequence[str], columns: Sequence[tuple[str, str, str]], postgresql: bool
) -> str:
    """An INSERT of a batch's rows. PostgreSQL: one statement, the rows as arrays unnested on
    the server (one prepared statement whatever the batch's size; a VALUES list per size was
    slower), JSON cast there from text. SQLite: one row's VALUES, for the driver's
    executemany (SQLAlchemy's per-row type processing skipped)."""
    names = ", ".join(name for name, _, _ in (*_WRITER, *columns))
    if not postgresql:
        values = ", ".join(f":{param}" for _, _, param in (*_WRITER, *columns))
        return (
            f"INSERT INTO {table} ({names}, {', '.join(times)}) VALUES ({values}, "
            + ", ".join(":now" for _ in times)
            + ")"
        )
    shared = ", ".join(f"CAST(:{param} AS {kind})" for _, kind, param in _WRITER)
    arrays = ", ".join(
        f"CAST(:{param} AS {'text' if kind == 'jsonb' else kind}[])" for _, kind, param in columns
    )
    row = ", ".join(
        f"CAST(u.{name} AS jsonb)" if kind == "jsonb" else f"u.{name}" for name, kind, _ in columns
    )
    now = ", ".join("CAST(:now AS timestamptz)" for _ in times)
    return (
        f"INSERT INTO {table} ({names}, {', '.join(times)})\n"
        f"SELECT {shared}, {row}, {now}\n"
        f"FROM unnest({arrays}) AS u({', '.join(name for name, _, _ in columns)})"
    )


def _statement(sql: str, postgresql: bool) -> TextClause:
    if postgresql:
        return text(sql)  # asyncpg takes the datetime as it is
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime()))  # SQLite's text form


_INSERT_ACTIONS = {
    pg: _statement(
        _insert("actions", ["stored_at"], _ACTIONS, pg)
        + ("\nRETURNING id, table_id, record_id, time, action_order" if pg else ""),
        pg,
    )
    for pg in (False, True)
}
# By whether the records were found (and locked) by the batch: new ones go in without ON
# CONFLICT, a sixth cheaper on PostgreSQL; one a concurrent batch created meanwhile fails the
# insert, and the batch is run again (see ``batch._retryable``).
_WRITE_RECORDS = {
    (pg, found): _statement(
        _insert("records", ["created_at", "updated_at"], _RECORDS, pg)
        + (_UPDATE_RECORD if found else ""),
        pg,
    )
    for pg in (False, True)
    for found in (False, True)
}


async def _write_rows(
    session: AsyncSession,
    statements: dict[Any, TextClause],
    key: Any,
    shared: dict[str, Any],
    arrays: dict[str, list[Any]],
) -> Any:
    """``statements[(postgresql, *key)]`` run with ``shared`` and the rows in ``arrays``: one
    execution with the arrays on PostgreSQL, an executemany of rows on SQLite."""
    postgresql = is_postgresql(session)
    statement = statements[(postgresql, *key) if key else postgresql]
    if postgresql:
        return await session.execute(statement, shared | arrays)
    names = list(arrays)
    rows = [shared | dict(zip(names, r, strict=True)) for r in zip(*arrays.values(), strict=True)]
    return await session.execute(statement, rows)


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


_OWN_XID = text("SELECT pg_current_xact_id()::text::bigint")


class WrittenSince(Exception):
    """A record the batch locked was written meanwhile by a younger transaction: one that took
    its id after this one and committed while this one waited for the lock. Written now, the
    batch's actions would sit before that transaction's in the log's (xid, id) order although
    they change the record after it, and a reader replaying the log would end with another
    record than the server. The batch must run again, in a new (younger) transaction."""


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
        # Only records that exist can have been written by another batch meanwhile.
        if found:
            own = await session.scalar(_OWN_XID)
            if any(r.xid > own for r in found.values()):
                raise WrittenSince
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


async def insert_actions(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    new: list[Checked],
    superseded: set[int],
    now: Any,
    written_by: str | None = None,
) -> dict[int, int]:
    """Append the new actions to the log: each one's log position (id) by its index;
    ``written_by``: the user who writes them."""
    # SQLite: this transaction holds the write lock, so the rows after the largest id before
    # it are exactly these (RETURNING would make SQLAlchemy send them a row at a time).
    postgresql = is_postgresql(session)
    before = None if postgresql else await session.scalar(select(func.max(Action.id)))
    result = await _write_rows(
        session,
        _INSERT_ACTIONS,
        (),
        {"project_id": project_id, "user_id": user, "device_id": device_id, "now": now},
        {
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
            "written_by": [written_by] * len(new),
        },
    )
    if not postgresql:
        result = await session.execute(
            select(
                Action.id, Action.table_id, Action.record_id, Action.time, Action.action_order
            ).where(Action.id > (before or 0))
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
    existing: Collection[tuple[int, str]],
) -> None:
    """Each touched record's final state; ``existing``: those that were found (and locked)."""
    shared = {"project_id": project_id, "user_id": user, "device_id": device_id, "now": now}
    for found in (False, True):
        keys = sorted(key for key in final if (key in existing) is found)  # one lock order
        if not keys:
            continue
        rows = [final[key] for key in keys]
        arrays = {
            "table_ids": [c.table.id for c, _, _ in rows],
            "record_ids": [c.record_id for c, _, _ in rows],
            "record_keys": [record_key(c.table.spec, c.record_id, d) for c, d, _ in rows],
            "data": [_json_text(c, data) for c, data, _ in rows],
            "deleted": [deleted for _, _, deleted in rows],
            "positions": [position[c.index] for c, _, _ in rows],
        }
        await _write_rows(session, _WRITE_RECORDS, (found,), shared, arrays)


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
