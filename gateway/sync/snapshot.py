"""First sync from a snapshot: a read without progress for a table gets the table's current
records instead of its whole log, then continues from the log with no gap and no duplicate.

A snapshot entry is the single INSERT that merging the record's whole log into one batch would
give (DESIGN.md rule 4): the record's data at the snapshot's horizon H, with the time, order,
sample time, author, device and log position of the last action that changed it. Records
deleted at H are not in it. With 1M actions over 100k records a first sync moves 100k entries.

The snapshot is taken at one horizon H (``horizon.py``) and pages through the records in row id
order; the cursor says "snapshot of H, after row id K" (``cursor.SnapshotMark``). Writers go on
meanwhile, and every page is a new database snapshot, so each record is delivered as it was at
H, never later:

- a record whose last change is at or below H (its ``(xid, position)``) is unchanged since H:
  every action at or below H was committed when H was taken, and any later change would carry
  a position above H;
- a record changed after H is folded from its actions at or below H (``merge.fold_record``);
  one created after H has none and is left out.

Record rows are never removed and keep their id, so paging by id meets every record that
existed at H once. When the last page is read the table's cursor becomes the log position H,
and the log delivers exactly the actions above it: nothing twice, nothing lost.

A table gets a snapshot only where the read would deliver every action of it: a device that
leaves its own actions out (no ``includeOwn``) and has written to the table reads its log as
before, since a snapshot cannot leave out what the device itself changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, and_, cast, literal, or_, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.dialect import in_values
from gateway.db.models import Action, Record, WriteProgress
from gateway.sync.actions import ACTION_TYPES, ActionType
from gateway.sync.cursor import Position
from gateway.sync.merge import LogEntry, fold_record
from gateway.sync.selection import CatalogTable


@dataclass(frozen=True, slots=True)
class SnapshotTable:
    """One table's part of a snapshot: its records as they were at ``horizon``, after row id
    ``after``, with sample times in [start, end) when the read restricts its time range."""

    name: str
    table: CatalogTable
    horizon: Position
    after: int = 0
    time_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    entries: list[LogEntry]
    keys: list[int]  # the record row id of each entry
    scanned_to: int | None  # the last record row id the page went through
    done: bool  # no record is left after the page


async def tables_for_snapshot(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    include_own: bool,
    fresh: Sequence[CatalogTable],
    caller: str | None = None,
) -> list[CatalogTable]:
    """Of the tables a read starts without progress, those a snapshot may serve: all of them,
    except, for a reader that leaves its own actions out, the tables it has written to (a
    device's, or without a deviceId what the ``caller`` wrote without one): those replay their
    log instead."""
    if include_own or not fresh:
        return list(fresh)
    if device_id is None:
        if caller is None:
            return list(fresh)
        mine = set(
            await session.scalars(
                select(Action.table_id)
                .where(
                    Action.project_id == project_id,
                    Action.user_id == user,
                    Action.written_by == caller,
                    Action.device_id.is_(None),
                    Action.table_id.in_([t.id for t in fresh]),  # type: ignore[attr-defined]
                )
                .distinct()
            )
        )
        return [t for t in fresh if t.id not in mine]
    written = set(
        await session.scalars(
            select(WriteProgress.table_id).where(
                WriteProgress.project_id == project_id,
                WriteProgress.user_id == user,
                WriteProgress.device_id == device_id,
                WriteProgress.table_id.in_([t.id for t in fresh]),  # type: ignore[attr-defined]
            )
        )
    )
    return [t for t in fresh if t.id not in written]


def _at(position: Position) -> ColumnElement[tuple[int, int]]:
    return tuple_(literal(position.xid), literal(position.id))


#: What a log entry carries beside its place, in LogEntry's order: every read of actions
#: selects these (the log's pages, a snapshot's records, their history at a horizon).
ENTRY_COLUMNS = (
    Action.action,
    Action.json_data,
    Action.sample_time,
    Action.time,
    Action.action_order,
    Action.author,
    Action.device_id,
)
_RECORD_COLUMNS = (
    Record.id,
    Record.table_id,
    Record.record_id,
    # As text, as stored (JSON's own spacing on both databases): no parsing and writing again.
    cast(Record.data, Text).label("data"),
    Record.xid,
    Record.position,
    *ENTRY_COLUMNS,
)


def _page_query(project_id: int, user: str, part: SnapshotTable, limit: int) -> object:
    changed_since = tuple_(Record.xid, Record.position) > _at(part.horizon)
    wanted: ColumnElement[bool] = Record.deleted.is_(False)  # type: ignore[attr-defined]
    if part.time_range is not None:
        start, end = part.time_range
        wanted = and_(wanted, Action.sample_time >= start, Action.sample_time < end)
    return (
        select(*_RECORD_COLUMNS)
        .join(Action, Action.id == Record.position)
        .where(
            Record.project_id == project_id,
            Record.user_id == user,
            Record.table_id == part.table.id,
            Record.id > part.after,  # type: ignore[operator]
            # As it is now, or, changed since H, as it was then (decided after the query).
            or_(wanted, changed_since),
        )
        .order_by(Record.id)  # type: ignore[arg-type]
        .limit(limit + 1)
    )


async def read_snapshot(
    session: AsyncSession,
    project_id: int,
    user: str,
    parts: Sequence[SnapshotTable],
    limit: int,
) -> SnapshotPage:
    """Up to ``limit`` records of the tables' snapshots, in row id order over all of them."""
    queries = [_page_query(project_id, user, part, limit) for part in parts]
    if len(queries) == 1:
        query = queries[0]
    else:  # each table on its own index, then the first ``limit`` of them all by row id
        union = union_all(*(select(q.subquery()) for q in queries)).subquery()  # type: ignore[attr-defined]
        query = select(union).order_by(union.c.id).limit(limit + 1)
    connection = await session.connection()  # plain rows, without the ORM's processing
    rows = (await connection.execute(query)).all()  # type: ignore[call-overload]
    done = len(rows) <= limit
    rows = rows[:limit]
    by_id = {part.table.id: part for part in parts}
    # Compared as tuples: a Position's generated comparison builds them on every call.
    horizons = {part.table.id: (part.horizon.xid, part.horizon.id) for part in parts}
    later: dict[int, list[str]] = defaultdict(list)  # table id -> records changed since H
    found: list[tuple[int, SnapshotTable, str, LogEntry | None]] = []
    for (
        row_id,
        table_id,
        record_id,
        data,
        xid,
        position,
        action,
        json_data,
        sample_time,
        time,
        order,
        author,
        device_id,
    ) in rows:
        part = by_id[table_id]
        entry = None
        if (xid, position) > horizons[table_id]:
            later[table_id].append(record_id)
        else:
            # Unchanged since an INSERT: its text as the device sent it; else the record's data.
            text = json_data if action == ActionType.INSERT.value else data
            entry = LogEntry(
                Position(xid, position),
                part.name,
                record_id,
                ActionType.INSERT,
                text,
                sample_time,
                time,
                order,
                author,
                device_id,
            )
        found.append((row_id, part, record_id, entry))
    then = await _as_it_was(session, project_id, user, parts, later)
    entries, keys = [], []
    for row_id, part, record_id, entry in found:
        if entry is None:
            entry = then.get((part.table.id, record_id))
            if entry is None or not _in_range(entry, part):
                continue
        entries.append(entry)
        keys.append(row_id)
    return SnapshotPage(
        entries=entries, keys=keys, scanned_to=rows[-1][0] if rows else None, done=done
    )


def _in_range(entry: LogEntry, part: SnapshotTable) -> bool:
    if part.time_range is None:
        return True
    start, end = part.time_range
    return entry.sample_time is not None and start <= entry.sample_time < end


async def _as_it_was(
    session: AsyncSession,
    project_id: int,
    user: str,
    parts: Sequence[SnapshotTable],
    later: Mapping[int, Collection[str]],
) -> dict[tuple[int, str], LogEntry]:
    """Records changed since their snapshot's horizon, folded from their actions up to it
    (absent: created after it, or deleted at it)."""
    out: dict[tuple[int, str], LogEntry] = {}
    for part in parts:
        record_ids = sorted(later.get(part.table.id, ()))
        if not record_ids:
            continue
        rows = await session.execute(
            select(Action.xid, Action.id, Action.record_id, *ENTRY_COLUMNS)
            .where(
                Action.project_id == project_id,
                Action.user_id == user,
                Action.table_id == part.table.id,
                in_values(session, Action.record_id, record_ids),
                tuple_(Action.xid, Action.id) <= _at(part.horizon),
                Action.superseded.is_(False),  # never applied to the record
            )
            .order_by(Action.xid, Action.id)
        )
        history: dict[str, list[LogEntry]] = defaultdict(list)
        for xid, id_, record_id, action, json_data, sample_time, time, order, author, dev in rows:
            history[record_id].append(
                LogEntry(
                    Position(xid, id_),
                    part.name,
                    record_id,
                    ACTION_TYPES[action],
                    json_data,
                    sample_time,
                    time,
                    order,
                    author,
                    dev,
                )
            )
        for record_id, entries in history.items():
            folded = fold_record(entries)
            if folded is not None:
                out[(part.table.id, record_id)] = folded
    return out
