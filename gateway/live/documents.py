"""The live stream of one table's documents behind ``recordChanges`` (RxDB's pull stream).

Subscribe first, then catch up, as ``stream.py`` does for actions: the stream registers for
wake-ups of the table, then takes its starting checkpoint (``replication.live_start``: at or
below any horizon a later pull takes) and sends it as a *resync* message first, which tells
the client to pull from its own checkpoint (RxDB's ``RESYNC``; on every subscription, so also
after a reconnect). From there each wake-up pulls the documents changed after the stream's own
checkpoint and sends them with it. So whichever of the client's pull and the stream's messages
come first, no change falls between them: the client may get a document twice, never miss
one. Wake-ups only say "look again"; the project's ``LogWatch`` makes up for lost ones and for
changes of access, which the next pull checks (ending the stream with ``FORBIDDEN``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.errors import LimitExceeded
from gateway.live.guard import check_token, token_seconds
from gateway.live.hub import Hub
from gateway.live.watch import log_watches
from gateway.sync.cursor import Cursor
from gateway.sync.replication import (
    DocumentPage,
    live_start,
    pull_documents,
    resolve_table,
)


async def stream_documents(
    db: Database,
    hub: Hub,
    principal: Principal,
    project: str,
    table: str,
    *,
    user: str | None = None,
    max_batch: int,
    poll_seconds: float,
    max_bytes: int | None = None,
) -> AsyncGenerator[DocumentPage, None]:
    """A resync message, then pages of changed documents as they commit. ``max_bytes``: the
    record data one message may carry (a message then holds fewer documents)."""
    scope = await resolve_table(db, principal, project, table, user)
    watches = log_watches(hub, db, poll_seconds)
    with hub.listen(scope.project_id, scope.user, {scope.table.id}) as waiter:
        async with watches.watch(scope.project_id) as watch:
            await watch.ready()
            cursor = await live_start(db)
            yield DocumentPage([], cursor, resync=True)
            while True:
                check_token(principal)
                waiter.event.clear()
                page, limit = await _pull(
                    db, principal, project, table, user, cursor, max_batch, max_bytes
                )
                cursor, full = page.checkpoint, len(page.documents) == limit
                if page.documents:
                    yield page
                del page  # an idle stream holds nothing of what it sent
                if full:
                    continue
                watch.parked(cursor.position)
                while not waiter.event.is_set():
                    check_token(principal)
                    await waiter.event.wait(token_seconds(principal))


async def _pull(
    db: Database,
    principal: Principal,
    project: str,
    table: str,
    user: str | None,
    cursor: Cursor,
    limit: int,
    max_bytes: int | None,
) -> tuple[DocumentPage, int]:
    """A page after ``cursor``, and the limit it was read with: smaller while its documents do
    not fit in one message (a message may carry fewer than the limit; only pulls must not)."""
    while True:
        try:
            page = await pull_documents(
                db,
                principal,
                project,
                table,
                user=user,
                checkpoint=cursor,
                limit=limit,
                max_batch=limit,
                max_bytes=max_bytes,
            )
            return page, limit
        except LimitExceeded as exc:
            if exc.details.get("limit") != "responseBytes" or limit == 1:
                raise
            limit = max(1, limit // 2)
