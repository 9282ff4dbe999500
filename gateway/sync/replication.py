"""Replication of whole documents, per table (RxDB's replication protocol), over the same
log, records, writer and access rules as the actions.

**Pull.** A checkpoint is a log cursor of one table (``cursor.Cursor``). A pull returns the
records changed after it, each once, as documents of its *current* state, and the checkpoint
to come back with, in pages of exactly ``limit`` documents while more remain (RxDB stops
pulling at the first page that is not full, so a page never ends short while more is ready):

- without a checkpoint, the table's records first, in row id order, deleted ones included (a
  client may hold a record another device deleted since), from a snapshot horizon H that the
  checkpoint keeps (``cursor.SnapshotMark``); then the log after H;
- then the log: its actions after the checkpoint up to the read horizon (``horizon.py``), in
  (xid, id) order, each record taken at its first action there; the checkpoint moves to the
  last action of the last record the page took, or to the horizon once the page has all.

Nothing is missed: every action at or below the horizon was committed when it was read, so a
record the page gave reflects it, and every later change lies after the checkpoint. A record
may come twice (changed again after its page, or created after H and met in the snapshot):
the client then simply has its current state again. Documents never go back in time, since
each read sees the records at least as new as the one before.

**Push.** Rows of (assumed master state, new state), in one transaction: the records are
locked, each row whose assumed state is not the record's current one is a conflict (its
current document is returned and nothing of it is written; a record the server does not have
is written), and the others go to the writer as INSERT, UPDATE (the fields that changed) or
DELETE actions, validated, logged, applied and announced as every write is. A refused action
refuses the whole push: nothing is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values
from gateway.db.models import Action, Record
from gateway.errors import BadUserInput, GatewayError, LimitExceeded
from gateway.sync import exchange
from gateway.sync.cursor import START, Cursor, Position, SnapshotMark
from gateway.sync.documents import PushRow, Stored, change, check_rows, document, same
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.horizon import highest_possible, horizon, lowest_possible
from gateway.sync.projects import open_user_data
from gateway.sync.selection import CatalogTable, check_known
from gateway.sync.validation import DEFAULT_LIMITS, DataLimits
from gateway.sync.writer import WriteRequest, changes_of, in_write_transaction
from gateway.sync.writer import write_in_transaction as write_actions_in
from gateway.sync.writer.store import lock_records


@dataclass(frozen=True, slots=True)
class DocumentPage:
    documents: list[dict[str, Any]]
    checkpoint: Cursor
    data_size: int = 0  # characters of record data, for the answer's budget
    resync: bool = False  # a live stream's "pull from your own checkpoint" (RxDB's RESYNC)


@dataclass(frozen=True, slots=True)
class TableScope:
    """Whose table a replication reads or writes, checked against the access rules."""

    project_id: int
    user: str
    table: CatalogTable


@dataclass(frozen=True, slots=True)
class PushOutcome:
    conflicts: list[dict[str, Any]]  # the current documents of the rows that did not fit
    written: list[int] = field(default_factory=list)  # indexes of the rows that changed records


async def open_table(
    session: AsyncSession, principal: Principal, project: str, table: str, user: str | None
) -> TableScope:
    data = await open_user_data(session, principal, project, user)
    check_known(data.tables, [table], "table")
    return TableScope(data.project_id, data.user, data.tables[table])


async def resolve_table(
    db: Database, principal: Principal, project: str, table: str, user: str | None
) -> TableScope:
    async with db.session() as session:
        return await open_table(session, principal, project, table, user)


def decode_checkpoint(token: str | None) -> Cursor | None:
    if token is None:
        return None
    try:
        return Cursor.decode(token)
    except BadUserInput as exc:
        raise BadUserInput(
            f"invalid checkpoint {token!r}: use a checkpoint the gateway returned",
            field="checkpoint",
        ) from exc


def check_limit(limit: int, max_batch: int) -> None:
    """A page size the gateway can fill: RxDB takes a shorter page for the end of the data."""
    if limit < 1:
        raise BadUserInput("limit must be 1 or more", field="limit")
    if limit > max_batch:
        raise LimitExceeded(
            f"a pull returns at most {max_batch} documents: ask for a limit of {max_batch} or "
            "less (a page shorter than the limit asked for means the end of the data)",
            limit=max_batch,
        )


async def pull_documents(
    db: Database,
    principal: Principal,
    project: str,
    table: str,
    *,
    user: str | None = None,
    checkpoint: str | Cursor | None = None,
    limit: int,
    max_batch: int,
    max_bytes: int | None = None,
) -> DocumentPage:
    """The next page of documents after ``checkpoint`` (None: from the start). ``max_bytes``:
    the page's record data must fit (``LIMIT_EXCEEDED`` otherwise: ask for a smaller limit)."""
    check_limit(limit, max_batch)
    cursor = checkpoint if isinstance(checkpoint, Cursor) else decode_checkpoint(checkpoint)
    async with db.snapshot() as session:
        upper = await horizon(session)  # first, as the reader does (see reader.read_actions)
        scope = await open_table(session, principal, project, table, user)
        page = await _pull(session, scope, cursor, upper, limit)
    if max_bytes is not None and page.data_size > max_bytes:
        raise LimitExceeded(
            f"these {len(page.documents)} documents hold more than the {max_bytes} characters "
            "of record data one answer may carry: pull with a smaller limit",
            limit="responseBytes",
        )
    return page


async def live_start(db: Database) -> Cursor:
    """Where a live stream starts: at or below every horizon a pull after this will take, so
    that a client pulling on the stream's first message and then taking the stream's
    checkpoints never passes over a change (it may get a few twice)."""
    async with db.snapshot() as session:
        at = await lowest_possible(session)
    return Cursor(at)


async def _pull(
    session: AsyncSession, scope: TableScope, cursor: Cursor | None, upper: Position, limit: int
) -> DocumentPage:
    rows: list[Any] = []
    if cursor is None or cursor.snapshot is not None:
        mark = cursor.snapshot if cursor is not None else SnapshotMark(upper, 0)
        if mark.horizon > upper and mark.horizon > await highest_possible(session):
            raise BadUserInput(  # never handed out: reading from there would skip changes
                "invalid checkpoint: use a checkpoint the gateway returned", field="checkpoint"
            )
        rows = await _snapshot_rows(session, scope, mark.after, limit + 1)
        if len(rows) > limit:
            rows = rows[:limit]
            after = SnapshotMark(mark.horizon, rows[-1].id)
            return _page(rows, Cursor(START, snapshot=after))
        cursor = Cursor(mark.horizon)  # the snapshot is complete: the log from its horizon
    taken = {r.record_id for r in rows}
    room = limit - len(rows)
    changed, at = await _changed_since(session, scope, cursor.position, upper, room, taken)
    return _page([*rows, *changed], cursor.advanced_to(at))


_RECORD_COLUMNS = (
    Record.id,
    Record.record_id,
    cast(Record.data, Text).label("data"),
    Record.deleted,
)


def _of_table(scope: TableScope) -> list[ColumnElement[bool]]:
    return [
        Record.project_id == scope.project_id,
        Record.user_id == scope.user,
        Record.table_id == scope.table.id,
    ]


async def _snapshot_rows(
    session: AsyncSession, scope: TableScope, after: int, count: int
) -> list[Any]:
    connection = await session.connection()  # plain rows, as the reader takes them
    query = (
        select(*_RECORD_COLUMNS)
        .where(*_of_table(scope), Record.id > after)  # type: ignore[operator]
        .order_by(Record.id)  # type: ignore[arg-type]
        .limit(count)
    )
    return list((await connection.execute(query)).all())


def _at(position: Position) -> ColumnElement[Any]:
    return tuple_(literal(position.xid), literal(position.id))


async def _changed_since(
    session: AsyncSession,
    scope: TableScope,
    since: Position,
    upper: Position,
    room: int,
    taken: set[str],
) -> tuple[list[Any], Position]:
    """Up to ``room`` records (beside those ``taken``) whose last change lies after ``since``
    and at or below ``upper``, in the order of those changes, and how far the log was gone
    through for them: the last change taken when more remain, else ``upper``. A record whose
    last change is above ``upper`` is left for a later pull, which gives it as it is then."""
    wanted: list[str] = []
    at = since
    chunk = room + len(taken) + 1
    connection = await session.connection()
    while True:
        rows = (
            await connection.execute(
                select(Action.xid, Action.id, Action.record_id)
                .where(
                    Action.project_id == scope.project_id,
                    Action.user_id == scope.user,
                    Action.table_id == scope.table.id,
                    tuple_(Action.xid, Action.id) > _at(at),
                    tuple_(Action.xid, Action.id) <= _at(upper),
                    Action.id == _LAST_CHANGE,
                )
                .order_by(Action.xid, Action.id)
                .limit(chunk)
            )
        ).all()
        for xid, action_id, record_id in rows:
            if record_id not in taken:
                if len(wanted) == room:
                    return await _records(session, scope, wanted), at  # full: it comes next
                wanted.append(record_id)
            at = Position(xid, action_id)
        if len(rows) < chunk:  # the whole log up to the horizon was gone through
            return await _records(session, scope, wanted), upper


# The last change of an action's record (superseded actions never are one: they change
# nothing). A subquery per action, not a join: each runs on the records' unique index with all
# of its columns, where PostgreSQL, planning a join without statistics, scanned the table's
# records for every action (66 s instead of 0.2 s for 10,000 records).
_LAST_CHANGE = (
    select(Record.position)
    .where(
        Record.table_id == Action.table_id,
        Record.user_id == Action.user_id,
        Record.record_id == Action.record_id,
        Record.project_id == Action.project_id,
    )
    .scalar_subquery()
)


async def _records(session: AsyncSession, scope: TableScope, record_ids: list[str]) -> list[Any]:
    """The records of ``record_ids`` as they are now, in that order."""
    if not record_ids:
        return []
    connection = await session.connection()
    found = {}
    for start in range(0, len(record_ids), 500):  # within SQLite's parameter limit
        chunk = record_ids[start : start + 500]
        query = select(*_RECORD_COLUMNS).where(
            *_of_table(scope), in_values(session, Record.record_id, chunk)
        )
        found.update({r.record_id: r for r in (await connection.execute(query)).all()})
    return [found[r] for r in record_ids]


def _page(rows: Sequence[Any], checkpoint: Cursor) -> DocumentPage:
    documents, size = [], 0
    for row in rows:
        size += len(row.data or "")
        data = json.loads(row.data) if row.data is not None else None
        documents.append(document(row.record_id, data, bool(row.deleted)))
    return DocumentPage(documents, checkpoint, size)


async def push_documents(
    db: Database,
    principal: Principal,
    project: str,
    table: str,
    rows: list[PushRow],
    *,
    user: str | None = None,
    device_id: str | None = None,
    max_batch: int,
    events: Events = NO_EVENTS,
    limits: DataLimits = DEFAULT_LIMITS,
) -> PushOutcome:
    """Write the rows that fit the server's current state, all or none; return the current
    documents of those that do not."""
    if len(rows) > max_batch:
        raise LimitExceeded(
            f"a push holds at most {max_batch} documents, this one has {len(rows)}",
            limit=max_batch,
        )
    if device_id is not None:
        exchange.check_text("deviceId", device_id)
    record_ids = check_rows(rows, limits.json_depth)
    now = int(time.time() * 1000)

    async def work(session: AsyncSession) -> tuple[PushOutcome, Changes]:
        scope = await open_table(session, principal, project, table, user)
        keys = [(scope.table.id, r) for r in record_ids]
        locked = await lock_records(session, scope.project_id, scope.user, keys)
        conflicts, actions, indexes = [], [], []
        for index, (row, record_id) in enumerate(zip(rows, record_ids, strict=True)):
            stored = locked.get((scope.table.id, record_id))
            master = None
            if stored is not None:
                master = Stored(record_id, stored.data, stored.deleted, stored.position)
            if master is not None and not same(row.assumed, master):
                conflicts.append(document(record_id, master.data, master.deleted))
                continue
            action = change(table, scope.user, row, master, now)
            if action is not None:
                actions.append(action)
                indexes.append(index)
        if not actions:
            return PushOutcome(conflicts), Changes()
        request = WriteRequest(project, actions, scope.user, device_id)
        try:
            outcome = await write_actions_in(session, principal, request, limits)
        except GatewayError as refused:
            raise _by_row(refused, indexes) from refused
        return PushOutcome(conflicts, indexes), changes_of(request, outcome)

    outcome, changes = await in_write_transaction(db, work, events)
    await events.committed(changes)
    return outcome


def _by_row(refused: GatewayError, indexes: list[int]) -> GatewayError:
    """The writer's refusal of the push's actions, told by the rows they came from."""
    invalid = refused.details.get("invalidActions")
    if invalid is None:
        return refused
    problems = []
    for problem in invalid:
        problems.append({**problem, "index": indexes[problem["index"]]})
    listed = "; ".join(f"rows[{p['index']}]: {p['reason']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    details = {k: v for k, v in refused.details.items() if k != "invalidActions"}
    return type(refused)(
        f"{len(problems)} invalid document(s), nothing was written: {listed}{more}",
        **details,
        invalidDocuments=problems,
    )
