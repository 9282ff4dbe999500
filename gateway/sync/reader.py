"""Reading the log: the seed's read and get-read-stats, with server-issued cursors.

A batch covers the selected tables in log order. Progress moves past everything the batch
accounted for, including actions filtered out or merged away:

- a full batch (more remain) ends at the last action it returned: every selected table's
  cursor moves there, because every earlier action of those tables was returned or filtered;
- a batch cut short by ``maxTime`` ends before the first action it left out;
- otherwise the reader saw everything up to the horizon (see ``horizon.py``) and every
  selected table's cursor moves to it, so filtered-out actions are never scanned again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Action
from gateway.errors import BadUserInput
from gateway.sync.actions import ActionType, DeliveredAction
from gateway.sync.cursor import START, START_CURSOR, Cursor, Position
from gateway.sync.devices import record_get as record_get_event
from gateway.sync.devices import universe
from gateway.sync.horizon import horizon
from gateway.sync.merge import LogEntry, merge
from gateway.sync.projects import open_user_data
from gateway.sync.selection import CatalogTable, check_known, select_tables

LOCAL, REMOTE = "local", "remote"


@dataclass(frozen=True, slots=True)
class TimeRange:
    table: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ReadFilter:
    include_tables: Sequence[str] | None = None
    exclude_tables: Sequence[str] | None = None
    time_ranges: Sequence[TimeRange] = ()
    include_own: bool = False


@dataclass(frozen=True, slots=True)
class ReadRequest:
    project: str
    user: str | None = None
    device_id: str | None = None
    progress: Mapping[str, str] = field(default_factory=dict)  # table -> cursor token
    filter: ReadFilter = ReadFilter()
    max_count: int = 0
    max_time: int | None = None


@dataclass(frozen=True, slots=True)
class TableProgress:
    table: str
    user: str
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class ReadBatch:
    actions: list[DeliveredAction]
    progress: list[TableProgress]
    has_more: bool


@dataclass(frozen=True, slots=True)
class ReadStats:
    progress: list[TableProgress]
    count: int
    latest_time: int | None


@dataclass(frozen=True, slots=True)
class _Scope:
    """One reader's view of the log: which rows of which tables it still has to see."""

    project_id: int
    user: str
    catalog: dict[str, CatalogTable]
    tables: dict[str, CatalogTable]
    cursors: dict[str, Cursor]
    ranges: dict[str, TimeRange]
    device_id: str | None
    include_own: bool

    def where(self, upper: Position) -> list[ColumnElement[bool]]:
        position = tuple_(Action.xid, Action.id)
        per_table = []
        for name, table in self.tables.items():
            conditions = [Action.table_id == table.id]
            cursor = self.cursors.get(name, START_CURSOR)
            if cursor.position > START:
                conditions.append(position > _at(cursor.position))
            span = self.ranges.get(name)
            if span is not None and table.has_time_fields:
                conditions += [Action.sample_time >= span.start, Action.sample_time < span.end]
            per_table.append(and_(*conditions))
        where = [
            Action.project_id == self.project_id,
            Action.user_id == self.user,
            or_(*per_table),
            position <= _at(upper),
            Action.superseded.is_(False),  # last-writer-wins losers never reach readers
        ]
        lowest = min(self.cursors.get(name, START_CURSOR).position for name in self.tables)
        if lowest > START:  # lets the (project, user, xid, id) index start the scan there
            where.append(position > _at(lowest))
        if self.device_id is not None and not self.include_own:
            where.append(or_(Action.device_id.is_(None), Action.device_id != self.device_id))
        return where

    def progress(
        self, moved_to: Position | None, last: Mapping[str, Cursor]
    ) -> list[TableProgress]:
        out = []
        for name in self.tables:
            cursor = last.get(name) or self.cursors.get(name, START_CURSOR)
            if moved_to is not None:
                cursor = cursor.advanced_to(moved_to)
            out.append(TableProgress(table=name, user=self.user, cursor=cursor))
        return out


def _at(position: Position) -> ColumnElement[tuple[int, int]]:
    return tuple_(literal(position.xid), literal(position.id))


async def _open_scope(session: AsyncSession, principal: Principal, request: ReadRequest) -> _Scope:
    data = await open_user_data(session, principal, request.project, request.user)
    project_id, user, catalog = data.project_id, data.user, data.tables
    check_known(catalog, request.progress, "progress")
    ranges: dict[str, TimeRange] = {}
    for span in request.filter.time_ranges:
        check_known(catalog, [span.table], "timeRangeRestrictions")
        if span.start > span.end:
            raise BadUserInput(f"time range of {span.table!r} ends before it starts")
        ranges[span.table] = span
    tables = select_tables(catalog, request.filter.include_tables, request.filter.exclude_tables)
    return _Scope(
        project_id=project_id,
        user=user,
        catalog=catalog,
        tables=tables,
        cursors={t: Cursor.decode(token) for t, token in request.progress.items()},
        ranges=ranges,
        device_id=request.device_id,
        include_own=request.filter.include_own,
    )


_COLUMNS = (
    Action.xid,
    Action.id,
    Action.table_id,
    Action.record_id,
    Action.action,
    Action.json_data,
    Action.sample_time,
    Action.time,
    Action.action_order,
    Action.author,
    Action.device_id,
)


async def read_actions(
    db: Database,
    principal: Principal,
    request: ReadRequest,
    *,
    max_batch: int,
    record_get: bool = True,
) -> ReadBatch:
    """A batch of the log after the request's progress. A read by a device registers the
    device and, when it delivers actions and ``record_get``, adds a GET to its history."""
    if request.max_count < 0:
        raise BadUserInput("maxCount must be 0 (no maximum) or more", field="maxCount")
    limit = min(request.max_count or max_batch, max_batch)
    async with db.snapshot() as session:
        scope = await _open_scope(session, principal, request)
        if not scope.tables:
            return ReadBatch(actions=[], progress=[], has_more=False)
        upper = await horizon(session)
        rows = (
            await session.execute(
                select(*_COLUMNS)
                .where(*scope.where(upper))
                .order_by(Action.xid, Action.id)
                .limit(limit + 1)
            )
        ).all()
    names = {t.id: name for name, t in scope.tables.items()}
    entries = [
        LogEntry(
            position=Position(r.xid, r.id),
            table=names[r.table_id],
            record_id=r.record_id,
            action=ActionType(r.action),
            json_data=r.json_data,
            sample_time=r.sample_time,
            time=r.time,
            order=r.action_order,
            author=r.author,
            device_id=r.device_id,
        )
        for r in rows
    ]
    moved_to: Position | None
    cut = _first_after(entries, request.max_time)
    if cut is not None:
        entries, has_more = entries[:cut], False
        moved_to = entries[-1].position if entries else None
    elif len(entries) > limit:
        entries, has_more = entries[:limit], True
        moved_to = entries[-1].position
    else:
        has_more, moved_to = False, upper
    last = {
        e.table: Cursor(e.position, e.time, e.order) for e in entries
    }  # later entries overwrite earlier ones: the last per table remains
    progress = scope.progress(moved_to, last)
    if request.device_id is not None:
        await record_get_event(
            db, principal, scope.project_id, scope.user, request.device_id,
            delivered=bool(entries) and record_get, partial=has_more,
            universe=universe(request.filter.include_tables, request.filter.exclude_tables),
            received={scope.tables[p.table].id: p.cursor.position for p in progress},
        )  # fmt: skip
    return ReadBatch(
        actions=[_deliver(e, scope) for e in merge(entries)], progress=progress, has_more=has_more
    )


def _first_after(entries: Sequence[LogEntry], max_time: int | None) -> int | None:
    if max_time is None:
        return None
    return next((i for i, e in enumerate(entries) if e.time > max_time), None)


def _deliver(entry: LogEntry, scope: _Scope) -> DeliveredAction:
    own = scope.device_id is not None and entry.device_id == scope.device_id
    return DeliveredAction(
        table=entry.table,
        user=scope.user,
        action=entry.action,
        record_id=entry.record_id,
        json_data=entry.json_data,
        sample_time=entry.sample_time,
        time=entry.time,
        order=entry.order,
        source=REMOTE if own else LOCAL,
        author=entry.author,
        device_id=entry.device_id,
        position=entry.position.id,
    )


@dataclass(frozen=True, slots=True)
class LiveScope:
    project_id: int
    user: str
    table_ids: frozenset[int]
    project_has_tables: bool


async def resolve_scope(db: Database, principal: Principal, request: ReadRequest) -> LiveScope:
    """Who and what a reader reads (checked and authorized), for registering wake-ups."""
    async with db.session() as session:
        scope = await _open_scope(session, principal, request)
        has_tables = bool(scope.catalog)
    return LiveScope(
        project_id=scope.project_id,
        user=scope.user,
        table_ids=frozenset(t.id for t in scope.tables.values()),
        project_has_tables=has_tables,
    )


async def read_stats(db: Database, principal: Principal, request: ReadRequest) -> ReadStats:
    """How many (unmerged) actions a read from this progress would go through, and the time
    of the latest; the progress comes back as given."""
    async with db.snapshot() as session:
        scope = await _open_scope(session, principal, request)
        count, latest = 0, None
        if scope.tables:
            upper = await horizon(session)
            count, latest = (
                await session.execute(
                    select(func.count(), func.max(Action.time)).where(*scope.where(upper))
                )
            ).one()
    given = [
        TableProgress(table=name, user=scope.user, cursor=cursor)
        for name, cursor in sorted(scope.cursors.items())
    ]
    return ReadStats(progress=given, count=count, latest_time=latest)
