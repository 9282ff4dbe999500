"""How far a reader may go in the log without passing an action that is not yet committed.

Readers return the actions at or below the horizon in (xid, id) order and then move their
cursors to it, so the horizon must be a position below which nothing can ever commit later.
Both backends must be called inside ``Database.snapshot()``: the horizon and the rows read
after it then come from one snapshot, S.

SQLite: one writer at a time holds the lock from BEGIN IMMEDIATE to COMMIT, so ids are taken in
commit order and the horizon is simply the largest id in S.

PostgreSQL: transactions commit out of order. Every action stores ``xid``, the 64-bit id of the
top-level transaction that wrote it (``pg_current_xact_id()``, the column default; inside a
subtransaction it still returns the top-level id, and the top-level transaction always gets its
id before any of its subtransactions). The horizon is ``(H, 0)``, so a read returns the actions
of S with ``xid < H``, where, with S's ``xmin``, ``xmax`` and ``xip`` (``pg_current_snapshot()``,
all xid8)::

    H = min({x in xip : x is not shown running in another database} + {xmax})

"Shown running in another database": a row of ``pg_stat_get_activity`` (what pg_stat_activity
shows) with ``datid`` not this database's and ``backend_xid`` equal to x's low 32 bits, read
after S was taken. When S cannot be trusted to list every running transaction, H is S's
``xmin`` instead, the server-wide horizon this module used before (see below).

Why nothing is lost. Take an action with ``xid = x < H`` that commits some day; it must be
visible in S. x < xmax, so x was assigned before S was taken, and either it was in ``xip`` or it
had already ended, committed (visible in S) or rolled back (never visible). (PostgreSQL also
leaves lazy VACUUM and decoding walsenders out of ``xip``; they write no actions.) If x was in
``xip``, it was left out of the minimum only because an activity row showed it in another
database, and that row is right:

- A backend is connected to one database for life, and a transaction can only write to its
  own database (dblink or postgres_fdw open a session of their own in the target database).
- The row is no stale mix of two backends: PostgreSQL publishes a backend's activity entry
  after the backend took its slot and withdraws it before giving the slot up, and
  pg_stat_activity reads each entry and then the xid of the backend in that slot. A backend
  that took the slot after the entry was read got its xid later still, so not before S.
- The activity snapshot is taken once per transaction, on first use, and S is taken when the
  transaction's first statement starts: in REPEATABLE READ every statement, this one
  included, comes after S, so the activity read does too. That order is what the previous
  point needs, which is why another isolation level (a new S per statement, next to an
  activity snapshot from an earlier statement) falls back to ``xmin``.
- Only 32 bits of ``backend_xid`` are shown. Every running xid is within 2^31 of the next one
  (PostgreSQL stops assigning ids before wraparound), and far fewer than 2^31 ids are assigned
  between S and the activity read, so two ids that match in their low 32 bits are the same
  xid8. Epochs never come into it otherwise: the log, S and H are all 64-bit.

Every other transaction's id is at or above ``xmax``: ids are assigned lazily, at a
transaction's first write, and one assigned after S (or running but not yet counted in
``xmax``) is never below it. So a transaction that began before S and writes later cannot
commit an action below H, and neither can the reader's own (read-only; in REPEATABLE READ it
could only take an id after S).

What holds readers back (never a loss, only a delay):

- every transaction of this database that has written, and any ``xip`` entry not shown in
  pg_stat_activity: one that ended between S and the activity read (the next read no longer
  sees it; ``read_actions`` asks for the horizon after its other queries, so that window is a
  few milliseconds), one of a session whose backend is not connected to a database, and prepared
  transactions (two-phase commit, ``pg_prepared_xacts``) of EVERY database. A prepared
  transaction has no backend; ``pg_prepared_xact()`` reads its xid and database from the shared
  entry without a lock, so a slot reused at that moment could pair an xid of this database
  with another database, and a wrongly attributed xid is a lost action. They keep holding readers
  back until COMMIT/ROLLBACK PREPARED; ``max_prepared_transactions`` is 0 by default.
- the fall-back to ``xmin``, server-wide as before: outside REPEATABLE READ/SERIALIZABLE, and
  whenever ``xmin`` is neither ``xmax`` nor the smallest ``xip`` entry, which means S does not
  list every running transaction (the caller's own id, or a snapshot taken on a standby, which
  keeps them in ``subxip``).

Cost: with no transaction running anywhere on the server (``xmin = xmax``) it is one snapshot
call, as before. Otherwise it also reads the activity of every backend of the server, once per
read: about 0.1 ms more with 10 backends and 0.2 ms with 70 on a 2-core machine, growing with
``max_connections`` in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Action
from gateway.sync.cursor import Position

# Each CASE branch is a subplan that runs only when taken: the activity is read only when a
# transaction is running. NOT EXISTS, not NOT IN: a NULL must never exclude an xid.
_PG_HORIZON = text(
    """
    WITH snap AS MATERIALIZED (
        SELECT s,
               pg_snapshot_xmin(s)::text::bigint AS xmin,
               pg_snapshot_xmax(s)::text::bigint AS xmax
        FROM pg_current_snapshot() AS s
    )
    SELECT CASE
        WHEN xmin = xmax THEN xmax
        WHEN current_setting('transaction_isolation') NOT IN ('repeatable read', 'serializable')
            OR (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x) IS DISTINCT FROM xmin
            THEN xmin
        ELSE (
            SELECT coalesce(min(x::text::bigint), snap.xmax)
            FROM pg_snapshot_xip(s) AS x
            WHERE NOT EXISTS (
                SELECT FROM pg_stat_get_activity(NULL) AS a
                WHERE a.backend_xid::text::bigint = x::text::bigint % 4294967296
                  AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
            )
        )
    END
    FROM snap
    """
)

# The transaction holding readers back the longest: the oldest xid of this database.
_PG_OLDEST = text(
    """
    SELECT a.pid, a.state,
           extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age
    FROM pg_stat_get_activity(NULL) AS a
    WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.backend_xid IS NOT NULL
      AND a.pid <> pg_backend_pid()
    ORDER BY age(a.backend_xid) DESC
    LIMIT 1
    """
)


# One past the latest completed transaction: every horizon above is at most what this was then,
# and it only grows.
_PG_COMPLETED = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")


async def highest_possible(session: AsyncSession) -> Position:
    """A bound no horizon handed out so far exceeds, for telling a cursor the gateway may have
    returned from one it cannot have. The horizon itself may step back a little (PostgreSQL:
    another database's transaction that ends between the snapshot and the activity read above
    counts as one of this database's), so a horizon above the current one is no proof of
    forgery; one above the snapshot's ``xmax`` is. On SQLite the horizon never steps back."""
    if session.get_bind().dialect.name == "postgresql":
        return Position(int((await session.execute(_PG_COMPLETED)).scalar_one()), 0)
    return await horizon(session)


# The oldest transaction still running anywhere on the server (or the next id, when none is).
_PG_OLDEST_RUNNING = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


async def lowest_possible(session: AsyncSession) -> Position:
    """A bound no later horizon falls below, for a reader that starts "now" and must not pass
    over anything a horizon taken a moment later would not yet have reached (a horizon may
    step back a little, see ``highest_possible``). PostgreSQL: the snapshot's ``xmin``, since
    every xid below it has ended and every later ``xip`` entry or ``xmax`` is at or above it.
    SQLite: the horizon itself, which never steps back."""
    if session.get_bind().dialect.name == "postgresql":
        return Position(int((await session.execute(_PG_OLDEST_RUNNING)).scalar_one()), 0)
    return await horizon(session)


async def horizon(session: AsyncSession) -> Position:
    if session.get_bind().dialect.name == "postgresql":
        return Position(int((await session.execute(_PG_HORIZON)).scalar_one()), 0)
    last = await session.scalar(select(func.coalesce(func.max(Action.id), 0)))
    return Position(0, int(last or 0))


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """A transaction of the gateway's database that has written and not yet ended."""

    pid: int
    age_seconds: float | None  # None: started by another role, whose start time is hidden
    state: str | None


async def oldest_transaction(session: AsyncSession) -> OpenTransaction | None:
    """The transaction that holds readers back the longest (PostgreSQL), for operators: the
    oldest one of this database that has an xid, other than the caller's. None on SQLite, whose
    readers nothing holds back."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    row = (await session.execute(_PG_OLDEST)).first()
    if row is None:
        return None
    age = None if row.age is None else round(max(float(row.age), 0.0), 1)
    return OpenTransaction(pid=int(row.pid), age_seconds=age, state=row.state)
