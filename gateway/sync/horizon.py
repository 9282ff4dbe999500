"""How far a reader may go in the log without passing an action that is not yet committed.

PostgreSQL: transactions commit out of order, so a reader never returns an action whose writing
transaction is not older than every transaction still running. ``pg_snapshot_xmin`` of the
reader's snapshot is the oldest running transaction id: every action with a smaller ``xid`` is
committed (and visible in that snapshot) or rolled back, and none can appear later. The horizon
is ``(xmin, 0)``; positions at or below it are final. A long transaction delays readers (it never
makes them lose actions), which is why gateway connections set
``idle_in_transaction_session_timeout``.

SQLite: one writer at a time holds the lock from BEGIN IMMEDIATE to COMMIT, so ids are taken in
commit order and the horizon is simply the largest id in the reader's snapshot.

Both must be called inside ``Database.snapshot()`` so that the horizon and the rows read after
it come from the same snapshot.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Action
from gateway.sync.cursor import Position

_PG_XMIN = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


async def horizon(session: AsyncSession) -> Position:
    if session.get_bind().dialect.name == "postgresql":
        return Position(int((await session.execute(_PG_XMIN)).scalar_one()), 0)
    last = await session.scalar(select(func.coalesce(func.max(Action.id), 0)))
    return Position(0, int(last or 0))
