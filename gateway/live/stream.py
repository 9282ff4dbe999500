"""The live action stream behind the ``databaseActions`` subscription (SenSeeAct's watch).

Subscribe first, then catch up (DESIGN.md rule 6): the stream registers with the hub before its
first read, so an action committed at any moment after that either is in a read or wakes a
later one. It then reads the log from its own progress, batch after batch while more is ready,
and waits for a wake-up once caught up. Every batch comes from the log with the cursor, so
nothing is missed at the hand-over and nothing is sent twice.

A consumer that cannot keep up holds the stream at its ``yield``; wake-ups meanwhile collapse
into one, and the next read simply returns a larger batch (up to ``maxCount``).

A subscription by a device is one run of the device's sync (``LiveRun``): WORKING from the
start, its counters growing with each batch, refreshed while idle so that the sweeper does not
time it out, and COMPLETED when the subscription ends (FAILED when an error ends it). A batch
is counted once it was handed on, so that the run's bookkeeping never delays a delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Action
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.live.guard import check_token, token_seconds
from gateway.live.hub import Hub
from gateway.live.watch import log_watches
from gateway.observability.metrics import Metrics
from gateway.sync import exchange
from gateway.sync.events import NO_EVENTS, Changes, Events
from gateway.sync.reader import (
    LiveScope,
    ReadBatch,
    ReadRequest,
    read_actions,
    read_exchange,
    resolve_scope,
)
from gateway.sync.replicas import hold_run
from gateway.sync.runs import COUNTER_NAMES, Counters, complete_run, fail_run, update_run

logger = logging.getLogger("gateway.live")
REFRESHES_PER_TIMEOUT = 3  # a live run is touched this often per run timeout, at least


async def stream_actions(
    db: Database,
    hub: Hub,
    principal: Principal,
    request: ReadRequest,
    *,
    max_batch: int,
    poll_seconds: float,
    history_seconds: float = 60.0,
    run_timeout_seconds: float = 3600.0,
    events: Events = NO_EVENTS,
    max_bytes: int | None = None,
    metrics: Metrics | None = None,
    replica_id: str | None = None,
) -> AsyncGenerator[ReadBatch, None]:
    """``max_bytes``: the record data one message may carry (batches end early to fit). A
    device's stream announces its run's changes, and a status change after each batch it
    delivered. ``metrics`` count what it delivers and, once it was caught up, how long after
    their write (sampled). ``replica_id``: the replica streaming it, recorded in its run (see
    gateway/sync/replicas.py)."""
    scope = await resolve_scope(db, principal, request)
    if not scope.project_has_tables:
        raise NotFound(
            f"project {request.project!r} has no tables, so there will never be data",
            reason="NO_DATA",
        )
    run = None
    if request.device_id is not None:
        run = LiveRun(db, run_timeout_seconds / REFRESHES_PER_TIMEOUT, events, replica_id)
    progress = dict(request.progress)
    next_history = 0.0  # a stream adds at most one GET to the history per ``history_seconds``
    error: Exception | None = None
    caught_up = False  # delivered batches are then fresh writes: their lag is the fan-out's
    # Every read goes through the access rule: a change of access wakes the stream (the hub,
    # and the project's watch when that wake-up was lost), and the token's expiry ends it.
    watches = log_watches(hub, db, poll_seconds)
    try:
        if run is not None:
            await run.start(principal, scope, request)
        with hub.listen(scope.project_id, scope.user, scope.table_ids) as waiter:
            async with watches.watch(scope.project_id) as watch:
                if run is not None:
                    watch.keep(run)  # until the run ends
                await watch.ready()
                while True:
                    check_token(principal)
                    waiter.event.clear()
                    record = time.monotonic() >= next_history
                    batch = await read_actions(
                        db,
                        principal,
                        replace(request, progress=progress),
                        max_batch=max_batch,
                        record_get=record,
                        own_run=False,
                        max_bytes=max_bytes,
                    )
                    if record and batch.actions:
                        next_history = time.monotonic() + history_seconds
                    progress = {p.table: p.cursor.encode() for p in batch.progress}
                    seen = min((p.cursor.position for p in batch.progress), default=None)
                    if run is not None:
                        run.read(batch.counters)
                    more = batch.has_more
                    delivered = bool(batch.actions)
                    if delivered:
                        yield batch
                        if metrics is not None:
                            await _count_delivery(db, metrics, batch, caught_up)
                    del batch  # an idle stream holds nothing of what it sent
                    if run is not None:
                        await run.save()
                    if delivered and request.device_id is not None:
                        await events.status_changed(request.project)  # what is pending moved
                    if more:
                        continue
                    caught_up = True
                    if seen is not None:  # no tables selected: nothing will ever come
                        watch.parked(seen)
                    # No timer of its own for lost wake-ups nor for its run's refresh (the
                    # watch does both for every stream of the project): only its token's.
                    while not waiter.event.is_set():
                        check_token(principal)
                        await waiter.event.wait(token_seconds(principal))
    except Exception as exc:
        error = exc
        raise
    finally:  # also when the client stops, disconnects, or the server shuts down
        if run is not None:
            # Shielded: a second cancellation (shutdown) must not cut the run's ending short.
            await asyncio.shield(run.finish(error))


async def _count_delivery(db: Database, metrics: Metrics, batch: ReadBatch, live: bool) -> None:
    """Count a delivered batch; now and then, for a stream that was caught up, measure how
    long after its write its newest action went out (the log keeps when it stored each)."""
    metrics.delivered(len(batch.actions))
    if not live or not metrics.lag_sample_due():
        return
    newest = max(a.position for a in batch.actions)
    # Shielded: a stream ended meanwhile (the client left) must not cut the lookup short, which
    # would leave its connection out of the pool.
    stored = await asyncio.shield(_stored_at(db, newest))
    if stored is not None:
        metrics.lag(stored)


async def _stored_at(db: Database, position: int) -> datetime | None:
    try:
        async with db.lookup() as session:
            found: datetime | None = await session.scalar(
                select(Action.stored_at).where(Action.id == position)
            )
            return found
    except Exception:  # a measure only: the stream goes on
        logger.debug("could not measure a delivery's lag", exc_info=True)
        return None


class LiveRun:
    """A live subscription's run of its device's sync. Each read's counters are added to it in
    a small transaction of their own, after the batch was handed on (``save``); while idle, the
    project's watch touches it with the other runs due (``touched``)."""

    def __init__(
        self,
        db: Database,
        refresh_seconds: float,
        events: Events,
        replica_id: str | None = None,
    ) -> None:
        self._db, self._refresh, self.events = db, refresh_seconds, events
        self._replica_id = replica_id  # who holds it: failed with REPLICA_LOST if it dies
        self.run_id: int | None = None  # None before it starts and once it ended
        self._refresh_at = 0.0
        self._unsaved = dict.fromkeys(COUNTER_NAMES, 0)

    async def start(self, principal: Principal, scope: LiveScope, request: ReadRequest) -> None:
        """WORKING, and full when the stream starts without any progress. Concurrent: the
        device's writes and reads meanwhile are runs of the same sync."""
        done = read_exchange(principal, scope.project_id, scope.user, request)
        async with self._db.transaction() as session:
            run = await exchange.live_started(session, done, full_sync=not request.progress)
            if self._replica_id is not None:
                await hold_run(session, run.id, self._replica_id)
            changes = Changes(runs=[run])
            await self.events.staged(session, changes)
        self.run_id = run.id  # at once after the commit: from here on it will be ended
        self._refresh_at = time.monotonic() + self._refresh
        await self.events.committed(changes)

    def read(self, counters: Counters) -> None:
        for name, value in counters.given().items():
            self._unsaved[name] += value

    def refresh_in(self) -> float | None:
        """Seconds until the run must be touched again (0: now; None: it ended)."""
        if self.run_id is None:
            return None
        return max(0.0, self._refresh_at - time.monotonic())

    def touched(self, ok: bool) -> None:
        if ok:
            self._refresh_at = time.monotonic() + self._refresh
        else:  # canceled or timed out meanwhile: the stream goes on without it
            self.run_id = None

    async def save(self) -> None:
        """Add the counters read since the last save; with none, touch the run only when a
        refresh is due (the sweeper fails a run not updated for the run timeout)."""
        if self.run_id is None or (
            not any(self._unsaved.values()) and time.monotonic() < self._refresh_at
        ):
            return
        try:
            async with self._db.transaction() as session:
                run = await update_run(session, self.run_id, self._counters(), add=True)
                changes = Changes(runs=[run])
                await self.events.staged(session, changes)
        except Conflict:  # canceled or timed out meanwhile: the stream goes on without it
            self.run_id = None
            return
        self._unsaved = dict.fromkeys(COUNTER_NAMES, 0)
        self._refresh_at = time.monotonic() + self._refresh
        await self.events.committed(changes)

    async def finish(self, error: Exception | None) -> None:
        """COMPLETED with what it read last, or FAILED with the error that ended the stream.
        Best effort: a run that ended meanwhile stays as it is, and a failure here must not
        hide how the stream ended."""
        if self.run_id is None:
            return
        run_id, self.run_id = self.run_id, None
        try:
            async with self._db.transaction() as session:
                await update_run(session, run_id, self._counters(), add=True)
                if error is None:
                    run = await complete_run(session, run_id)
                elif isinstance(error, GatewayError):
                    run = await fail_run(session, run_id, error.code, error.message)
                else:  # the details are in the log, not for every dashboard to read
                    message = "the live stream ended with an internal error"
                    run = await fail_run(session, run_id, GatewayError.code, message)
                changes = Changes(runs=[run])
                await self.events.staged(session, changes)
        except Conflict:  # canceled or timed out meanwhile
            return
        except Exception:
            logger.exception("could not end the live sync run %s", run_id)
            return
        await self.events.committed(changes)

    def _counters(self) -> Counters:
        return Counters(**self._unsaved)
