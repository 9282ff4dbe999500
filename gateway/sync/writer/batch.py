"""A batch, the usual way in: one transaction (retried on a lost connection or a collision
with a concurrent batch), announced with its commit (see ``Events.staged``); a batch of a
device is a run of its sync, COMPLETED with the batch or FAILED, in a transaction of its own,
when the batch is refused (see ``_accepted_counters`` and ``_refused_counters`` for what the
counters count)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import generic_plans, insert, is_transient
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
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.conflicts import delivered_positions, versions_at
from gateway.sync.events import NO_EVENTS, Changes, Events, Written
from gateway.sync.exchange import Exchange
from gateway.sync.projects import open_user_data
from gateway.sync.runs import Counters
from gateway.sync.selection import select_tables
from gateway.sync.validation import DEFAULT_LIMITS, DataLimits
from gateway.sync.writer.checks import check_each, split_duplicates
from gateway.sync.writer.model import WriteOutcome, WriteRequest
from gateway.sync.writer.overlap import detect_overlaps
from gateway.sync.writer.play import Writer
from gateway.sync.writer.store import (
    WrittenSince,
    advance_write_progress,
    insert_actions,
    lock_records,
    marks,
    upsert_records,
)

logger = logging.getLogger("gateway")
_ATTEMPTS = 3
_T = TypeVar("_T")


# Refusals of a batch that make it a FAILED run of the device's sync (other errors mean the
# request never was the device's sync: not signed in, not allowed, no such project).
_RUN_FAILURES = {e.code for e in (ValidationFailed, TableNotAllowed, Conflict, LimitExceeded)}


_INVALID = {ValidationFailed.code, TableNotAllowed.code}  # actions with bad content


_WHAT = "writeActions"  # a write, in its run's trigger reason


async def write_actions(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    *,
    max_batch: int,
    events: Events = NO_EVENTS,
    limits: DataLimits = DEFAULT_LIMITS,
) -> WriteOutcome:
    """Write a batch in one transaction and announce what it changed with its commit. A
    refused batch of a device is still a (FAILED) run."""
    try:
        outcome, changes = await _write(db, principal, request, max_batch, limits, events)
    except GatewayError as refused:
        if refused.code in _RUN_FAILURES:
            await _record_refusal(db, principal, request, refused, events)
        raise
    await events.committed(changes)
    return outcome


def changes_of(request: WriteRequest, outcome: WriteOutcome) -> Changes:
    """What a written batch announces: its new actions, its run, its project's status."""
    changes = Changes(statuses=[request.project])
    if outcome.accepted:
        changes.written.append(
            Written(
                outcome.project_id,
                outcome.user,
                outcome.table_ids,
                request.device_id,
                count=len(outcome.accepted),
            )
        )
    if outcome.run is not None:
        changes.runs.append(outcome.run)
    return changes


async def _write(
    db: Database,
    principal: Principal,
    request: WriteRequest,
    max_batch: int,
    limits: DataLimits,
    events: Events,
) -> tuple[WriteOutcome, Changes]:
    if len(request.actions) > max_batch:
        raise LimitExceeded(
            f"a batch holds at most {max_batch} actions, this one has {len(request.actions)}",
            limit=max_batch,
        )
    if request.device_id is not None:
        exchange.check_text("deviceId", request.device_id)

    async def work(session: AsyncSession) -> tuple[WriteOutcome, Changes]:
        outcome = await write_in_transaction(session, principal, request, limits)
        return outcome, changes_of(request, outcome)

    return await in_write_transaction(db, work, events)


async def in_write_transaction(
    db: Database,
    work: Callable[[AsyncSession], Awaitable[tuple[_T, Changes]]],
    events: Events = NO_EVENTS,
) -> tuple[_T, Changes]:
    """``work`` in one write transaction, its ``Changes`` staged before the commit (the caller
    announces them as committed). Run again, from the start in a new transaction, when it
    collided with a concurrent batch or lost its connection: ``work`` must do all of its
    reads inside (``write_in_transaction`` does)."""
    collisions = lost = 0
    while True:
        try:
            async with db.transaction() as session:
                result, changes = await work(session)
                await events.staged(session, changes)
            return result, changes
        except WrittenSince as exc:
            collisions += 1  # rolled back: once more, as a younger transaction
            if collisions == _ATTEMPTS:
                raise Conflict("the batch kept colliding with concurrent writes; retry it") from exc
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
    db: Database,
    principal: Principal,
    request: WriteRequest,
    refused: GatewayError,
    events: Events,
) -> None:
    """A refused batch of a device as a FAILED run of its sync, in a transaction of its own
    (the batch's rolled back), announced with it. Only when the caller may write that user's
    data there: a request refused for that was not the device's sync. Best effort: the
    refusal is what the client must get, whatever happens here."""
    device_id = request.device_id
    if device_id is None:
        return
    try:
        async with db.transaction() as session:
            try:
                data = await open_user_data(session, principal, request.project, request.user)
            except GatewayError:  # UNAUTHENTICATED, FORBIDDEN, NOT_FOUND: not its sync
                return
            invalid: list[dict[str, Any]] | None = refused.details.get("invalidActions")
            run = await exchange.refused(
                session,
                _exchange(principal, request, data.project_id, data.user, device_id),
                _refused_counters(request.actions, invalid),
                refused,
                json.dumps(invalid) if invalid is not None else None,
                what=_WHAT,
            )
            changes = Changes(runs=[run])
            await events.staged(session, changes)
        await events.committed(changes)
    except Exception:
        logger.exception("could not record the refused batch of device %r as a run", device_id)


async def write_in_transaction(
    session: AsyncSession,
    principal: Principal,
    request: WriteRequest,
    limits: DataLimits = DEFAULT_LIMITS,
) -> WriteOutcome:
    """The write inside a transaction the caller commits (``write_actions`` is the usual way
    in; this lets other work join the same transaction)."""
    await generic_plans(session)
    data = await open_user_data(session, principal, request.project, request.user)
    project_id, user, catalog = data.project_id, data.user, data.tables
    allowed = select_tables(catalog, request.include_tables, request.exclude_tables)

    checked = check_each(request.actions, catalog, allowed, user, limits)
    records = await lock_records(session, project_id, user, (c.record for c in checked))
    new, duplicates = await split_duplicates(session, project_id, user, checked, records.keys())
    # What the device received matters only where it changes records that exist already: a
    # batch of new records (the usual upload) costs no lookup.
    changing = {
        c.table.id for c in new if c.action is not ActionType.INSERT and c.record in records
    }
    seen = await delivered_positions(session, project_id, user, request.device_id, changing)
    writer = Writer(request.device_id, seen)
    versions = await versions_at(session, writer.contested(new, records))
    played = writer.play(new, records, versions)

    if new:
        now = utcnow()
        position = await insert_actions(
            session,
            project_id,
            user,
            request.device_id,
            new,
            played.superseded,
            now,
            written_by=principal.user_id,
        )
        await upsert_records(
            session, project_id, user, request.device_id, played.final, position, now, records
        )
        await advance_write_progress(session, project_id, user, request.device_id, new)
        conflicts = [d.row(project_id, user, position[c.index], now) for c, d in played.conflicts]
        conflicts += await detect_overlaps(
            session, project_id, user, request.device_id, played.final, position, now
        )
        if conflicts:
            await session.execute(insert(session, ConflictRow), conflicts)

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
        progress=await marks(session, project_id, user, request.device_id, tables),
        project_id=project_id,
        user=user,
        table_ids=frozenset(c.table.id for c in new),
        run=run,
    )


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
    return isinstance(exc, IntegrityError) or is_transient(exc)
