"""Writing to the log: the seed's write (and get-progress), atomic, validated and idempotent.

One transaction per batch. Everything is checked before anything is written: the batch is
applied whole or refused whole, with every invalid action listed by index. An action already in
the log (same project, user, table, recordId, time, order and the same content) is a duplicate
and skipped, so a batch retried after a lost response changes nothing.

A batch written with a ``deviceId`` is a run of the device's own sync: COMPLETED in the batch's
transaction, or FAILED, in a transaction of its own, when the batch is refused (see
``_accepted_counters`` and ``_refused_counters`` for what the counters count).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values, insert
from gateway.db.models import Action, Record, WriteProgress
from gateway.db.models import Conflict as ConflictRow
from gateway.db.types import utcnow
from gateway.errors import (
    Conflict,
    DatabaseUnavailable,
    GatewayError,
    LimitExceeded,
    TableNotAllowed,
    ValidationFailed,
)
from gateway.sync import exchange
from gateway.sync.actions import ActionType, IncomingAction, InvalidAction
from gateway.sync.conflicts import (
    ConflictKind,
    Detected,
    Version,
    changed_unseen,
    current_record,
    delivered_positions,
    versions_at,
)
from gateway.sync.cursor import Position
from gateway.sync.events import NO_EVENTS, Events
from gateway.sync.exchange import Exchange
from gateway.sync.projects import open_user_data
from gateway.sync.runs import Counters, RunInfo
from gateway.sync.selection import CatalogTable, select_tables
from gateway.sync.tables import ConflictPolicy
from gateway.sync.validation import (
    DEFAULT_LIMITS,
    ActionProblem,
    ActionTooLarge,
    DataLimits,
    check_labels,
    check_order,
    check_time,
    normalize_record_id,
    parse_data,
    record_key,
    sample_time,
)

_T = TypeVar("_T")
logger = logging.getLogger("gateway")
NO_DEVICE = ""  # write progress of actions written without a deviceId
_ATTEMPTS = 3
# PostgreSQL's "try again" failures: deadlock detected, serialization failure.
_TRANSIENT_SQLSTATES = {"40P01", "40001"}
_CHUNK = 500  # keys per lookup: within SQLite's parameter limit
# Refusals of a batch that make it a FAILED run of the device's sync (other errors mean the
# request never was the device's sync: not signed in, not allowed, no such project).
_RUN_FAILURES = {e.code for e in (ValidationFailed, TableNotAllowed, Conflict, LimitExceeded)}
_INVALID = {ValidationFailed.code, TableNotAllowed.code}  # actions with bad content
_WHAT = "writeActions"  # a write, in its run's trigger reason


@dataclass(frozen=True, slots=True)
class WriteRequest:
    project: str
    actions: Sequence[IncomingAction]
    user: str | None = None
    device_id: str | None = None
    include_tables: Sequence[str] | None = None
    exclude_tables: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class WriteMark:
    """Write progress of one table: the (time, order) of the latest action written."""

    table: str
    user: str
    time: int | None
    order: int | None


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    accepted: list[int]
    duplicates: list[int]
    superseded: list[int]  # accepted, but last-writer-wins losers: written, applied to nothing
    progress: list[WriteMark]
    project_id: int
    user: str
    table_ids: frozenset[int]  # the tables that got new actions
    run: RunInfo | None  # the device's run of this batch (none without a deviceId)


@dataclass(slots=True)
class _Checked:
    index: int
    table: CatalogTable
    record_id: str
    action: ActionType
    data: dict[str, Any] | None
    source: IncomingAction
    sample_time: int | None = None

    @property
    def identity(self) -> tuple[int, str, int, int]:
        return (self.table.id, self.record_id, self.source.time, self.source.order)

    @property
    def record(self) -> tuple[int, str]:
        return (self.table.id, self.record_id)


async def write_actions(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    *,
    max_batch: int,
    events: Events = NO_EVENTS,
    limits: DataLimits = DEFAULT_LIMITS,
) -> WriteOutcome:
    """Write a batch in one transaction and announce what it changed once that committed. A
    refused batch of a device is still a (FAILED) run."""
    try:
        outcome = await _write(db, principal, request, max_batch, limits)
    except GatewayError as refused:
        if refused.code in _RUN_FAILURES:
            run = await _record_refusal(db, principal, request, refused)
            if run is not None:
                await events.runs_changed([run])
        raise
    if outcome.accepted:
        await events.actions_written(
            outcome.project_id, outcome.user, outcome.table_ids, request.device_id
        )
    if outcome.run is not None:
        await events.runs_changed([outcome.run])
    await events.status_changed(request.project)
    return outcome


async def _write(
    db: Database, principal: Principal, request: WriteRequest, max_batch: int, limits: DataLimits
) -> WriteOutcome:
    if len(request.actions) > max_batch:
        raise LimitExceeded(
            f"a batch holds at most {max_batch} actions, this one has {len(request.actions)}",
            limit=max_batch,
        )
    if request.device_id is not None:
        exchange.check_text("deviceId", request.device_id)
    collisions = lost = 0
    while True:
        try:
            async with db.transaction() as session:
                return await write_in_transaction(session, principal, request, limits)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                # The connection died mid-transaction (a restarted or failed-over database, a
                # network cut): the batch rolled back, or, if it died during COMMIT, committed.
                # Once more on a fresh connection; a retry is safe either way (idempotent).
                lost += 1
                if lost > 1:
                    raise DatabaseUnavailable(
                        "the connection to the database was lost while writing; retrying the "
                        "batch is safe (actions already written come back as duplicates)",
                        retryable=True,
                    ) from exc
                continue
            # A concurrent batch wrote the same actions or created the same record between our
            # checks and our insert, or the database broke a lock cycle. Run again: the batch
            # now finds those actions as duplicates or the records as they are.
            if not _retryable(exc):
                raise
            collisions += 1
            if collisions == _ATTEMPTS:
                raise Conflict("the batch kept colliding with concurrent writes; retry it") from exc


async def _record_refusal(
    db: Database, principal: Principal, request: WriteRequest, refused: GatewayError
) -> RunInfo | None:
    """A refused batch of a device as a FAILED run of its sync, in a transaction of its own
    (the batch's rolled back). Only when the caller may write that user's data there: a
    request refused for that was not the device's sync. Best effort: the refusal is what the
    client must get, whatever happens here."""
    device_id = request.device_id
    if device_id is None:
        return None
    try:
        async with db.transaction() as session:
            try:
                data = await open_user_data(session, principal, request.project, request.user)
            except GatewayError:  # UNAUTHENTICATED, FORBIDDEN, NOT_FOUND: not its sync
                return None
            invalid: list[dict[str, Any]] | None = refused.details.get("invalidActions")
            return await exchange.refused(
                session,
                _exchange(principal, request, data.project_id, data.user, device_id),
                _refused_counters(request.actions, invalid),
                refused,
                json.dumps(invalid) if invalid is not None else None,
                what=_WHAT,
            )
    except Exception:
        logger.exception("could not record the refused batch of device %r as a run", device_id)
        return None


def _exchange(
    principal: Principal, request: WriteRequest, project_id: int, user: str, device_id: str
) -> Exchange:
    return Exchange(
        project_id=project_id,
        user=user,
        device_id=device_id,
        username=principal.user_id,
        include_tables=request.include_tables,
        exclude_tables=request.exclude_tables,
    )


def _source_counters(actions: Sequence[IncomingAction]) -> dict[str, int]:
    """What the batch holds: its actions, the INSERTs and UPDATEs among them, the DELETEs."""
    deletes = sum(a.action is ActionType.DELETE for a in actions)
    return {
        "source_record_count": len(actions),
        "source_record_updates": len(actions) - deletes,
        "source_record_deletes": deletes,
    }


def _accepted_counters(
    actions: Sequence[IncomingAction], new: int, duplicates: int, superseded: int
) -> Counters:
    """Processed: every action accepted or found a duplicate; updated: those newly written
    and applied to their records (not duplicates, not last-writer-wins losers)."""
    return Counters(
        **_source_counters(actions),
        records_processed=new + duplicates,
        records_updated=new - superseded,
        records_failed=0,
        records_invalid=0,
        source_record_invalids=0,
    )


def _refused_counters(
    actions: Sequence[IncomingAction], invalid: list[dict[str, Any]] | None
) -> Counters:
    """Nothing processed; failed: the refused actions (without a list of them, as for a batch
    over the limit, the whole batch); invalid: those refused for their content or table."""
    bad = sum(p["code"] in _INVALID for p in invalid or ())
    return Counters(
        **_source_counters(actions),
        records_processed=0,
        records_updated=0,
        records_failed=len(invalid) if invalid is not None else len(actions),
        records_invalid=bad,
        source_record_invalids=bad,
    )


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state in _TRANSIENT_SQLSTATES


async def write_in_transaction(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    limits: DataLimits = DEFAULT_LIMITS,
) -> WriteOutcome:
    """The write inside a transaction the caller commits (``write_actions`` is the usual way
    in; this lets other work join the same transaction)."""
    data = await open_user_data(session, principal, request.project, request.user)
    project_id, user, catalog = data.project_id, data.user, data.tables
    allowed = select_tables(catalog, request.include_tables, request.exclude_tables)

    checked = _check_each(request.actions, catalog, allowed, user, limits)
    new, duplicates = await _split_duplicates(session, project_id, user, checked)
    records = await _lock_records(session, project_id, user, (c.record for c in new))
    # What the device received matters only where it changes records that exist already: a
    # batch of new records (the usual upload) costs no lookup.
    changing = {
        c.table.id for c in new if c.action is not ActionType.INSERT and c.record in records
    }
    seen = await delivered_positions(session, project_id, user, request.device_id, changing)
    writer = _Writer(request.device_id, seen)
    versions = await versions_at(session, writer.contested(new, records))
    played = writer.play(new, records, versions)

    if new:
        now = utcnow()
        rows = [
            _action_row(project_id, user, request.device_id, c, now, c.index in played.superseded)
            for c in new
        ]
        ids = (
            (
                await session.execute(
                    insert(session, Action).returning(Action.id, sort_by_parameter_order=True),
                    rows,
                )
            )
            .scalars()
            .all()
        )
        position = {c.index: action_id for c, action_id in zip(new, ids, strict=True)}
        await _upsert_records(
            session, project_id, user, request.device_id, played.final, position, now
        )
        await _advance_write_progress(session, project_id, user, request.device_id, new)
        if played.conflicts:
            await session.execute(
                insert(session, ConflictRow),
                [d.row(project_id, user, position[c.index], now) for c, d in played.conflicts],
            )

    run = None
    if request.device_id is not None:
        counters = _accepted_counters(
            request.actions, len(new), len(duplicates), len(played.superseded)
        )
        run = await exchange.wrote(
            session,
            _exchange(principal, request, project_id, user, request.device_id),
            counters,
            what=_WHAT,
        )

    tables = sorted({c.table.name: c.table for c in checked}.values(), key=lambda t: t.name)
    return WriteOutcome(
        accepted=[c.index for c in new],
        duplicates=duplicates,
        superseded=sorted(played.superseded),
        progress=await _marks(session, project_id, user, request.device_id, tables),
        project_id=project_id,
        user=user,
        table_ids=frozenset(c.table.id for c in new),
        run=run,
    )


def _check_each(
    actions: Sequence[IncomingAction],
    catalog: dict[str, CatalogTable],
    allowed: dict[str, CatalogTable],
    user: str,
    limits: DataLimits,
) -> list[_Checked]:
    checked: list[_Checked] = []
    problems: list[InvalidAction] = []
    for index, action in enumerate(actions):
        table = allowed.get(action.table)
        if table is None:
            reason = (
                f"table {action.table!r} is excluded by includeTables/excludeTables"
                if action.table in catalog
                else f"table {action.table!r} does not exist in the project"
            )
            problems.append(InvalidAction(index, TableNotAllowed.code, reason))
            continue
        try:
            if action.user != user:
                raise ActionProblem(f"user {action.user!r} differs from the target user {user!r}")
            record_id = normalize_record_id(action.record_id)
            check_time(action.time)
            check_order(action.order)
            check_labels(action.source, action.author)
            data = parse_data(action.action, action.json_data, table.spec, record_id, user, limits)
        except ActionTooLarge as problem:
            problems.append(InvalidAction(index, LimitExceeded.code, str(problem)))
            continue
        except ActionProblem as problem:
            problems.append(InvalidAction(index, ValidationFailed.code, str(problem)))
            continue
        checked.append(_Checked(index, table, record_id, action.action, data, action))
    _refuse(problems)
    return checked


def _refuse(problems: list[InvalidAction]) -> None:
    if not problems:
        return
    error: type[GatewayError] = (
        TableNotAllowed
        if any(p.code == TableNotAllowed.code for p in problems)
        else Conflict
        if all(p.code == Conflict.code for p in problems)
        else LimitExceeded
        if all(p.code == LimitExceeded.code for p in problems)
        else ValidationFailed
    )
    listed = "; ".join(f"#{p.index}: {p.reason}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    # A refused conflict carries the record to rebase on; the first one also at the top.
    current = [
        p.detail["currentRecord"] for p in problems if p.detail and "currentRecord" in p.detail
    ]
    raise error(
        f"{len(problems)} invalid action(s), nothing was written: {listed}{more}",
        invalidActions=[p.to_json() for p in problems],
        **({"currentRecord": current[0]} if current else {}),
    )


async def _split_duplicates(
    session: AsyncSession, project_id: int, user: str, checked: list[_Checked]
) -> tuple[list[_Checked], list[int]]:
    """Actions not yet in the log, and the indexes of those that are (a retried batch)."""
    stored: dict[tuple[int, str, int, int], tuple[str, Any, str | None]] = {}
    for table_id, record_ids in _by_table(c.record for c in checked).items():
        for chunk in _chunks(record_ids):
            rows = await session.execute(
                select(
                    Action.record_id, Action.time, Action.action_order,
                    Action.action, Action.json_data, Action.author,
                ).where(
                    Action.project_id == project_id,
                    Action.user_id == user,
                    Action.table_id == table_id,
                    in_values(session, Action.record_id, chunk),
                )
            )  # fmt: skip
            for r in rows:
                content = (r.action, _parsed(r.json_data), r.author)
                stored[(table_id, r.record_id, r.time, r.action_order)] = content
    new: list[_Checked] = []
    duplicates: list[int] = []
    conflicts: list[InvalidAction] = []
    for c in checked:
        content = (c.action.value, c.data, c.source.author)
        earlier = stored.get(c.identity)
        if earlier is None:
            stored[c.identity] = content
            new.append(c)
        elif earlier == content:
            duplicates.append(c.index)
        else:
            conflicts.append(
                InvalidAction(
                    c.index,
                    Conflict.code,
                    "an action with this table, recordId, time and order was already written "
                    "with different content",
                )
            )
    _refuse(conflicts)
    return new, duplicates


async def _lock_records(
    session: AsyncSession, project_id: int, user: str, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], Record]:
    """The current records the batch touches, locked against concurrent writers (PostgreSQL;
    SQLite writers are serialized already), in one order for every batch."""
    found: dict[tuple[int, str], Record] = {}
    for table_id, record_ids in _by_table(keys).items():
        for chunk in _chunks(record_ids):
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


_Final = dict[tuple[int, str], tuple[_Checked, dict[str, Any] | None, bool]]


@dataclass(slots=True)
class _Played:
    final: _Final  # each touched record's final (last applied action, data, deleted)
    superseded: set[int]  # indexes of last-writer-wins losers
    conflicts: list[tuple[_Checked, Detected]]


@dataclass(slots=True)
class _State:
    live: bool
    data: dict[str, Any] | None
    stored: Record | None  # the record as stored, until this batch changes it


class _Writer:
    """Plays a batch over the current records as one writer (a device, or none) sees them."""

    def __init__(self, device_id: str | None, seen: dict[int, Position]) -> None:
        self.device_id = device_id
        self.seen = seen

    def _unseen(self, c: _Checked, stored: Record | None) -> bool:
        return (
            stored is not None
            and c.action is not ActionType.INSERT
            and changed_unseen(
                stored, self.device_id, self.seen.get(c.table.id), c.source.base_version
            )
        )

    def contested(self, new: list[_Checked], records: dict[tuple[int, str], Record]) -> set[int]:
        """Log positions of the changes the batch may conflict with."""
        return {
            stored.position
            for c in new
            if self._unseen(c, stored := records.get(c.record)) and stored is not None
        }

    def play(
        self,
        new: list[_Checked],
        records: dict[tuple[int, str], Record],
        versions: dict[int, Version],
    ) -> _Played:
        """Play the new actions over the current records; refuse the batch if any does not
        fit or conflicts under REJECT."""
        state = {key: _State(not r.deleted, r.data, r) for key, r in records.items()}
        played = _Played(final={}, superseded=set(), conflicts=[])
        problems: list[InvalidAction] = []
        for c in new:
            s = state.get(c.record) or _State(False, None, None)
            if self._unseen(c, s.stored):
                assert s.stored is not None
                outcome = self._contest(c, s, versions[s.stored.position], played)
                if outcome is not None:
                    problems.append(outcome)
                if outcome is not None or c.index in played.superseded:
                    continue
            if c.action is ActionType.INSERT and s.live:
                problems.append(
                    InvalidAction(c.index, ValidationFailed.code, "record already exists")
                )
                continue
            if c.action is not ActionType.INSERT and not s.live:
                problems.append(
                    InvalidAction(c.index, ValidationFailed.code, "record does not exist")
                )
                continue
            data = s.data
            if c.action is ActionType.INSERT:
                data = c.data
            elif c.action is ActionType.UPDATE:
                data = (data or {}) | (c.data or {})
            live = c.action is not ActionType.DELETE
            # A DELETE keeps the record's last sample time, so time-range readers receive it.
            c.sample_time = sample_time(c.table.spec, data)
            state[c.record] = _State(live, data, None)
            played.final[c.record] = (c, data, not live)
        _refuse(problems)
        return played

    def _contest(
        self, c: _Checked, s: _State, theirs: Version, played: _Played
    ) -> InvalidAction | None:
        """Settle an action against an unseen change: a refusal (REJECT), or the action is
        superseded or goes on to be applied (LAST_WRITER_WINS, conflict recorded)."""
        assert s.stored is not None
        if not s.live and c.action is ActionType.DELETE:
            played.superseded.add(c.index)  # deleted twice: no conflict, nothing to apply
            return None
        kind = ConflictKind.CONCURRENT_UPDATE if s.live else ConflictKind.UPDATE_AFTER_DELETE
        if c.table.spec.conflict_policy is ConflictPolicy.REJECT:
            return InvalidAction(
                c.index,
                Conflict.code,
                f"{kind.value}: the record changed since the version this device worked from; "
                "read it again and rebase the change",
                detail={
                    "conflict": kind.value,
                    "currentRecord": current_record(c.table.name, s.stored),
                },
            )
        mine = Version(self.device_id, c.action, c.source.time, c.source.order, None, c.data)
        wins = mine.mark >= theirs.mark  # a tie goes to the later arrival
        played.conflicts.append(
            (c, Detected(kind, c.table.id, c.record_id, s.stored.record_key, theirs, mine, wins))
        )
        if not wins:
            played.superseded.add(c.index)
            c.sample_time = sample_time(c.table.spec, (s.data or {}) | (c.data or {}))
        elif not s.live:
            s.live = True  # a later UPDATE brings the deleted record back
        return None


def _action_row(
    project_id: int, user: str, device_id: str | None, c: _Checked, now: Any, superseded: bool
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


async def _upsert_records(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    final: _Final,
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


async def _advance_write_progress(
    session: AsyncSession, project_id: int, user: str, device_id: str | None, new: list[_Checked]
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


async def _marks(
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
    """The seed's get-progress: per selected table, the latest (time, order) written for the
    user (by that device, when one is given); null for tables never written."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        found_id, target, catalog = data.project_id, data.user, data.tables
        tables = list(select_tables(catalog, include_tables, exclude_tables).values())
        return await _marks(session, found_id, target, device_id, tables)


def _by_table(keys: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """Record ids grouped by table, each group sorted: every batch locks in the same order."""
    grouped: dict[int, set[str]] = {}
    for table_id, record_id in keys:
        grouped.setdefault(table_id, set()).add(record_id)
    return {table_id: sorted(ids) for table_id, ids in sorted(grouped.items())}


def _chunks(items: list[_T]) -> Iterable[list[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _parsed(json_data: str | None) -> Any:
    return None if json_data is None else json.loads(json_data)
