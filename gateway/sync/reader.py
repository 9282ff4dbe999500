"""Reading the log: SenSeeAct's read and get-read-stats, with server-issued cursors.

A batch covers the selected tables in log order. Progress moves past everything the batch
accounted for, including actions filtered out or merged away:

- a full batch (more remain) ends at the last action it returned: every selected table's
  cursor moves there, because every earlier action of those tables was returned or filtered;
- a batch cut short by ``maxTime`` ends before the first action it left out;
- otherwise the reader saw everything up to the horizon (see ``horizon.py``) and every
  selected table's cursor moves to it, so filtered-out actions are never scanned again.

A read by a device is a run of the device's own sync, recorded with the device's GET and
delivered progress in one small transaction after the read (see ``_read_counters``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import is_transient
from gateway.db.models import Action
from gateway.errors import BadUserInput, LimitExceeded
from gateway.sync import exchange
from gateway.sync.actions import ACTION_TYPES, ActionType, DeliveredAction
from gateway.sync.cursor import START, START_CURSOR, Cursor, Position, SnapshotMark
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.exchange import Exchange
from gateway.sync.horizon import highest_possible, horizon
from gateway.sync.merge import LogEntry, merge
from gateway.sync.projects import open_user_data
from gateway.sync.runs import Counters, RunInfo
from gateway.sync.selection import CatalogTable, check_known, select_tables
from gateway.sync.snapshot import (
    ENTRY_COLUMNS,
    SnapshotPage,
    SnapshotTable,
    read_snapshot,
    tables_for_snapshot,
)

LOCAL, REMOTE = "local", "remote"
logger = logging.getLogger("gateway")


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
    # Tables without progress start from a snapshot of their records (snapshot.py); False
    # replays their whole log instead.
    snapshot: bool = True
    # Several actions of one record in a batch come as one (merge.py); False delivers every
    # action, so that the last one delivered per table is where the batch ended in it (the
    # SenSeeAct adapter's progress, see gateway/sync/seed_progress.py).
    merge: bool = True


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
    counters: Counters = field(default_factory=Counters)  # what the read did, for its run


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
    caller: str  # the reader: without a deviceId, its own writes are what includeOwn means

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
        if not self.include_own:
            where.append(self.not_own())
        return where

    def not_own(self) -> ColumnElement[bool]:
        """Not the reader's own actions: a device's, or without a deviceId what the caller
        wrote without one (SenSeeAct's source "remote": a client without a device id is one
        local database; what a device wrote is that device's own, not this reader's)."""
        if self.device_id is not None:
            return or_(Action.device_id.is_(None), Action.device_id != self.device_id)
        return or_(
            Action.written_by.is_(None),
            Action.written_by != self.caller,
            Action.device_id.is_not(None),
        )

    def own(self, entry: LogEntry) -> bool:
        if self.device_id is not None:
            return entry.device_id == self.device_id
        return entry.device_id is None and entry.written_by == self.caller

    def after_snapshots(self, parts: Mapping[str, SnapshotTable]) -> _Scope:
        """This scope with the tables of complete snapshots at their horizons in the log."""
        if not parts:
            return self
        moved = {name: Cursor(part.horizon) for name, part in parts.items()}
        return replace(self, cursors={**self.cursors, **moved})

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


def read_exchange(
    principal: Principal, project_id: int, user: str, request: ReadRequest
) -> Exchange:
    """A device's read (or live stream), as the device's bookkeeping records it."""
    assert request.device_id is not None
    return Exchange(
        project_id=project_id,
        user=user,
        device_id=request.device_id,
        username=principal.user_id,
        include_tables=request.filter.include_tables,
        exclude_tables=request.filter.exclude_tables,
    )


def _at(position: Position) -> ColumnElement[tuple[int, int]]:
    return tuple_(literal(position.xid), literal(position.id))


async def _open_scope(session: AsyncSession, principal: Principal, request: ReadRequest) -> _Scope:
    if request.device_id is not None:
        exchange.check_text("deviceId", request.device_id)
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
        caller=principal.user_id,
    )


_COLUMNS = (
    Action.xid,
    Action.id,
    Action.table_id,
    Action.record_id,
    *ENTRY_COLUMNS,
    Action.written_by,
)


async def read_actions(
    db: Database,
    principal: Principal,
    request: ReadRequest,
    *,
    max_batch: int,
    record_get: bool = True,
    own_run: bool = True,
    events: Events = NO_EVENTS,
    max_bytes: int | None = None,
) -> ReadBatch:
    """A batch of the log after the request's progress. A read by a device registers the
    device, moves its delivered progress, adds a GET to its history when it delivers actions
    and ``record_get``, and with ``own_run`` is a (finished) run of the device's sync, announced
    with the status change once committed. Without ``own_run`` (the reads of a live
    subscription, one run for all) the caller counts the batch's ``counters`` and announces
    itself.
    Tables without progress start from a snapshot of their records (see ``snapshot.py``) unless
    ``request.snapshot`` is false; a batch gives the snapshots first, then the log.
    ``max_bytes``: the batch ends before the ``jsonData`` it carries would pass that many
    characters (``hasMore`` tells the rest); ``LIMIT_EXCEEDED`` when not even its first action
    fits."""
    if request.max_count < 0:
        raise BadUserInput("maxCount must be 0 (no maximum) or more", field="maxCount")
    limit = min(request.max_count or max_batch, max_batch)
    page: SnapshotPage | None = None
    rows: Sequence[Any] = ()
    async with db.snapshot() as session:
        # The horizon first: it is taken with the snapshot, so that a transaction of another
        # database ending meanwhile (see horizon.py) cannot hold this read back.
        upper = await horizon(session)
        scope = await _open_scope(session, principal, request)
        if not scope.tables:
            return ReadBatch(actions=[], progress=[], has_more=False)
        parts = await _snapshot_parts(session, scope, request, upper)
        if parts:
            page = await read_snapshot(
                session, scope.project_id, scope.user, list(parts.values()), limit
            )
        room = limit - (len(page.entries) if page is not None else 0)
        if (page is None or page.done) and room > 0:
            # The snapshots are complete: their tables go on in the log from their horizons.
            log_scope = scope.after_snapshots(parts)
            # On the connection: plain rows, without the ORM's result processing.
            connection = await session.connection()
            rows = (
                await connection.execute(
                    select(*_COLUMNS)
                    .where(*log_scope.where(upper))
                    .order_by(Action.xid, Action.id)
                    .limit(room + 1)
                )
            ).all()
    names = {t.id: name for name, t in scope.tables.items()}
    # Unpacked in _COLUMNS' order: a row's attributes cost more than its positions.
    logged = [
        LogEntry(
            Position(xid, action_id),
            names[table_id],
            record_id,
            ACTION_TYPES[action],
            json_data,
            sample_time,
            time,
            order,
            author,
            device_id,
            written_by,
        )
        for (
            xid,
            action_id,
            table_id,
            record_id,
            action,
            json_data,
            sample_time,
            time,
            order,
            author,
            device_id,
            written_by,
        ) in rows
    ]
    snapped = page.entries if page is not None else []
    entries = snapped + logged
    # Where the batch is full with more to come: the end of an unfinished snapshot page, or
    # the log's extra row.
    full_at: int | None = None
    if page is not None and (not page.done or room <= 0):
        full_at = len(snapped)
    elif len(logged) > room:
        full_at = len(snapped) + room
    time_cut = _first_after(entries, request.max_time)
    byte_cut = _first_over(entries, max_bytes)
    if byte_cut == 0 and time_cut != 0:
        raise LimitExceeded(
            f"the next action's data does not fit in what is left of this answer "
            f"({max_bytes} characters): read it on its own",
            limit="responseBytes",
        )
    cuts = [c for c in (time_cut, byte_cut, full_at) if c is not None]
    at = min(cuts) if cuts else len(entries)
    # Cut by maxTime, nothing more is ready; cut by size or count, more is.
    has_more = bool(cuts) and at != time_cut
    entries = entries[:at]
    snapshot_done = page is None or (page.done and at >= len(snapped))
    scope = _after_snapshot_page(scope, parts, page, at, snapshot_done)
    moved_to: Position | None = None
    if snapshot_done:
        moved_to = (entries[-1].position if at > len(snapped) else None) if cuts else upper
    last = {
        e.table: Cursor(e.position, e.time, e.order) for e in entries[len(snapped) :]
    }  # later entries overwrite earlier ones: the last per table remains
    progress = scope.progress(moved_to, last)
    merged = merge(entries) if request.merge else list(entries)
    counters = _read_counters(entries, merged)
    if request.device_id is not None:
        received = {scope.tables[p.table].id: p.cursor.position for p in progress}
        bookkeeping = _record_read(
            db,
            principal,
            scope,
            request,
            counters if own_run else None,
            delivered=record_get and bool(entries),
            partial=has_more,
            received=received,
        )
        await _even_if_cancelled(_announce(db, bookkeeping, events, request.project, own_run))
    return ReadBatch(
        actions=[_deliver(e, scope) for e in merged],
        progress=progress,
        has_more=has_more,
        counters=counters,
    )


async def _snapshot_parts(
    session: AsyncSession, scope: _Scope, request: ReadRequest, upper: Position
) -> dict[str, SnapshotTable]:
    """The tables this read takes from snapshots: those part way through one, and those it
    starts without progress (at the current horizon) when a snapshot may serve them."""
    parts: dict[str, SnapshotTable] = {}
    fresh = []
    for name, table in scope.tables.items():
        cursor = scope.cursors.get(name)
        if cursor is None:
            fresh.append(table)
        elif cursor.snapshot is not None:
            at = cursor.snapshot.horizon
            if at > upper and at > await highest_possible(session):
                # never handed out: reading from there would skip actions
                raise BadUserInput(
                    f"invalid progress cursor for {name!r}: use a cursor the gateway returned",
                    field="progress",
                )
            parts[name] = _part(scope, table, cursor.snapshot.horizon, cursor.snapshot.after)
    if request.snapshot and fresh:
        for table in await tables_for_snapshot(
            session,
            scope.project_id,
            scope.user,
            scope.device_id,
            scope.include_own,
            fresh,
            scope.caller,
        ):
            parts[table.name] = _part(scope, table, upper, 0)
    return parts


def _part(scope: _Scope, table: CatalogTable, at: Position, after: int) -> SnapshotTable:
    span = scope.ranges.get(table.name)
    span_ = (span.start, span.end) if span is not None and table.has_time_fields else None
    return SnapshotTable(table.name, table, at, after, span_)


def _after_snapshot_page(
    scope: _Scope,
    parts: Mapping[str, SnapshotTable],
    page: SnapshotPage | None,
    at: int,
    done: bool,
) -> _Scope:
    """The scope with the snapshot tables' cursors where this batch leaves them: at their
    horizons in the log once the snapshots are complete, else after the last record the batch
    went through. Their (time, order): the latest of the entries they delivered."""
    if page is None:
        return scope
    latest: dict[str, tuple[int, int]] = {}
    for entry in page.entries[:at]:
        mark = (entry.time, entry.order)
        latest[entry.table] = max(latest.get(entry.table, mark), mark)
    reached = None
    if done:
        pass
    elif at >= len(page.entries):
        reached = page.scanned_to  # the whole page, records left out included
    elif at > 0:
        reached = page.keys[at - 1]
    cursors = dict(scope.cursors)
    for name, part in parts.items():
        before = cursors.get(name)
        marks = [latest[name]] if name in latest else []
        if before is not None and before.time is not None:
            marks.append((before.time, before.order or 0))
        time, order = max(marks) if marks else (None, None)
        if done:
            cursors[name] = Cursor(part.horizon, time, order)
        else:
            after = max(part.after, reached or 0)
            cursors[name] = Cursor(START, time, order, SnapshotMark(part.horizon, after))
    return replace(scope, cursors=cursors)


def _read_counters(read: Sequence[LogEntry], delivered: Sequence[LogEntry]) -> Counters:
    """Source: the log actions read (before merging); processed and updated: the actions
    delivered (after merging), of which the INSERTs and UPDATEs, and the DELETEs."""
    deletes = sum(e.action is ActionType.DELETE for e in delivered)
    return Counters(
        source_record_count=len(read),
        source_record_updates=len(delivered) - deletes,
        source_record_deletes=deletes,
        records_processed=len(delivered),
        records_updated=len(delivered),
    )


_unfinished: set[asyncio.Task[None]] = set()  # bookkeeping whose reader went away


async def _even_if_cancelled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even when the caller is cancelled (a client that disconnects
    mid-read, a subscription stopped): a read's bookkeeping must not be half done or lost. Its
    errors reach the caller; once the caller is gone, the log."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        _unfinished.add(task)  # kept until it ends
        task.add_done_callback(_finished)
        raise


def _finished(task: asyncio.Task[None]) -> None:
    _unfinished.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("a read's bookkeeping failed", exc_info=task.exception())


async def _announce(
    db: Database,
    bookkeeping: Coroutine[Any, Any, RunInfo | None],
    events: Events,
    project: str,
    own_run: bool,
) -> None:
    """The bookkeeping, then its announcements: on PostgreSQL in one statement of its own
    (rather than a transaction per kind), the bookkeeping having committed already."""
    run = await bookkeeping
    changes = Changes(runs=[run] if run is not None else [], statuses=[project] if own_run else [])
    if not (changes.runs or changes.statuses):
        return
    try:
        async with db.lookup() as session:
            await events.staged(session, changes)
    except Exception:  # best effort, as every announcement: once more, one by one
        logger.warning("could not announce a read's run and status at once", exc_info=True)
        changes.staged = False
    await events.committed(changes)


async def _record_read(
    db: Database,
    principal: Principal,
    scope: _Scope,
    request: ReadRequest,
    run_counters: Counters | None,
    *,
    delivered: bool,
    partial: bool,
    received: Mapping[int, Position],
) -> RunInfo | None:
    """After a read by a device, in one small transaction: it was seen, it has received up to
    ``received`` (per table id), a GET if ``delivered``, and, given ``run_counters``, its run:
    COMPLETED, and full when the read started without any progress."""
    done = read_exchange(principal, scope.project_id, scope.user, request)
    for attempt in range(1, _BOOKKEEPING_ATTEMPTS + 1):
        try:
            # On PostgreSQL one statement, one round trip: no transaction around it.
            opened = db.lookup() if db.backend == "postgresql" else db.transaction()
            async with opened as session:
                return await exchange.received(
                    session,
                    done,
                    received,
                    delivered=delivered,
                    partial=partial,
                    counters=run_counters,
                    full_sync=not request.progress,
                )
        except DBAPIError as exc:
            # The device's first two reads raced to register it, or concurrent reads of one
            # device deadlocked on its rows: the statement was undone, run it again.
            if not (isinstance(exc, IntegrityError) or is_transient(exc)):
                raise
            if attempt == _BOOKKEEPING_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


_BOOKKEEPING_ATTEMPTS = 3


def _first_over(entries: Sequence[LogEntry], max_bytes: int | None) -> int | None:
    """The first entry whose data would take the batch past ``max_bytes`` characters."""
    if max_bytes is None:
        return None
    total = 0
    for i, entry in enumerate(entries):
        total += len(entry.json_data or "")
        if total > max_bytes:
            return i
    return None


def _first_after(entries: Sequence[LogEntry], max_time: int | None) -> int | None:
    if max_time is None:
        return None
    return next((i for i, e in enumerate(entries) if e.time > max_time), None)


def _deliver(entry: LogEntry, scope: _Scope) -> DeliveredAction:
    own = scope.own(entry)
    return DeliveredAction(  # by position: one per action delivered
        entry.table,
        scope.user,
        entry.action,
        entry.record_id,
        entry.json_data,
        entry.sample_time,
        entry.time,
        entry.order,
        REMOTE if own else LOCAL,
        entry.author,
        entry.device_id,
        entry.position.id,
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
        upper = await horizon(session)  # first, as in read_actions
        scope = await _open_scope(session, principal, request)
        count, latest = 0, None
        if scope.tables:
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
