"""The live action stream behind the ``databaseActions`` subscription (the seed's watch).

Subscribe first, then catch up (DESIGN.md rule 6): the stream registers with the hub before its
first read, so an action committed at any moment after that either is in a read or wakes a
later one. It then reads the log from its own progress, batch after batch while more is ready,
and waits for a wake-up once caught up. Every batch comes from the log with the cursor, so
nothing is missed at the hand-over and nothing is sent twice.

A consumer that cannot keep up holds the stream at its ``yield``; wake-ups meanwhile collapse
into one, and the next read simply returns a larger batch (up to ``maxCount``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.errors import NotFound, Unauthenticated
from gateway.live.hub import Hub
from gateway.sync.reader import ReadBatch, ReadRequest, read_actions, resolve_scope


async def stream_actions(
    db: Database,
    hub: Hub,
    principal: Principal,
    request: ReadRequest,
    *,
    max_batch: int,
    poll_seconds: float,
    history_seconds: float = 60.0,
) -> AsyncIterator[ReadBatch]:
    scope = await resolve_scope(db, principal, request)
    if not scope.project_has_tables:
        raise NotFound(
            f"project {request.project!r} has no tables, so there will never be data",
            reason="NO_DATA",
        )
    progress = dict(request.progress)
    next_history = 0.0  # a stream adds at most one GET to the history per ``history_seconds``
    with hub.listen(scope.project_id, scope.user, scope.table_ids) as waiter:
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
            )
            if record and batch.actions:
                next_history = time.monotonic() + history_seconds
            progress = {p.table: p.cursor.encode() for p in batch.progress}
            if batch.actions:
                yield batch
            if batch.has_more:
                continue
            # A lost wake-up costs at most ``poll_seconds`` of delay, never an action.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), wait_seconds(principal, poll_seconds))


def check_token(principal: Principal) -> None:
    if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
        raise Unauthenticated("token expired: subscribe again with a new token")


def wait_seconds(principal: Principal, poll_seconds: float, *, jitter: bool = True) -> float | None:
    """How long to wait for a wake-up: the poll interval (with jitter, so that subscriptions
    opened together do not all re-read at once), and never past the token's expiry."""
    if jitter:
        poll_seconds *= random.uniform(0.8, 1.2)
    if principal.expires_at is None:
        return None if poll_seconds == float("inf") else poll_seconds
    left = (principal.expires_at - datetime.now(UTC)).total_seconds()
    return max(0.0, min(poll_seconds, left))
