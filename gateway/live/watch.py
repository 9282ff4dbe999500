"""One safety re-read per project, for all of its caught-up live streams.

Wake-ups (``Hub.wake``) may be lost: a bus message dropped, a bus connection down. Instead of
every caught-up ``databaseActions`` stream re-reading the log on its own every
``poll_seconds``, one ``LogWatch`` per project looks, in one snapshot, whether anything became
readable since it last looked, and wakes only the streams of the users and tables concerned
(Hasura multiplexes its live queries the same way). Its cost does not grow with the number of
idle streams, only with the users who have one (PostgreSQL: one index probe each).

Why nothing is missed. ``floor`` is a log position up to which every parked stream has seen
everything it may read: a stream that parks reports the lowest position its cursors reached,
which lowers the floor if needed. A check takes the horizon H (nothing can commit at or below
it later, see ``gateway/sync/horizon.py``) and looks for actions in (floor, H]: those below the
floor were seen, those above H come up in a later check. The floor then rises to H. A stream
that parks while a check runs lowers the floor for the next one. Waking a stream that has
nothing new costs it one read, never an action: it reads from its own cursor.

The same check watches access (a project's ``open`` flag, its members, its grants): when that
changed since the previous check, the project's streams and dashboards are woken, and a stream
re-reads through the access rule, ending with FORBIDDEN if it must. So a lost access
announcement also costs at most ``poll_seconds``. ``Hub.wake_all`` (after the bus connection
came back) asks every watch to check at once instead of waking every stream.

A device's stream is a WORKING run of its sync that must be touched before the sweeper times it
out. The watch touches the runs of all its idle device streams that come due before its next
check in one UPDATE, rather than each stream in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from sqlalchemy import String, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.db.models import AccessGrant, Action, Project, ProjectMember, SyncRun
from gateway.db.types import utcnow
from gateway.live.feeds import SharedFeeds
from gateway.live.guard import jittered
from gateway.live.hub import Hub
from gateway.sync.cursor import Position
from gateway.sync.events import Changes, Events
from gateway.sync.horizon import horizon
from gateway.sync.runs import SyncRunStatus
from gateway.sync.runs.loading import load_runs
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.live")

_RUNS_PER_UPDATE = 1_000  # ids in one IN list, far below both databases' parameter limits


class KeptRun(Protocol):
    """A live stream's run of its device's sync (``stream.LiveRun``)."""

    run_id: int | None  # None: it ended
    events: Events

    def refresh_in(self) -> float | None: ...

    def touched(self, ok: bool) -> None:
        """Touched now (ok), or found no longer WORKING (canceled or timed out meanwhile)."""


class LogWatch:
    def __init__(self, db: Database, hub: Hub, project_id: int, poll_seconds: float) -> None:
        self._db, self._hub, self._project_id, self._poll = db, hub, project_id, poll_seconds
        self._floor: Position | None = None  # None: no stream has parked yet
        self._lowered: Position | None = None  # reported while a check ran
        self._access: tuple[Any, ...] | None = None  # None: not known (yet, or since a failure)
        self._ready = asyncio.Event()  # the first check ended
        self._runs: set[KeptRun] = set()  # of the device streams, touched before they time out
        self._task: asyncio.Task[None] | None = None
        self.checks = 0  # completed checks (tests wait for one)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"log-watch-{self._project_id}")

    async def stop(self) -> None:
        await cancelled(self._task)

    async def ready(self) -> None:
        """Once the watch knows who may see the project: a stream checks its access after
        this, so that any change the watch sees later is one the stream may not have seen."""
        await self._ready.wait()

    def keep(self, run: KeptRun) -> None:
        """Touch ``run`` before it times out, until it ends."""
        self._runs.add(run)

    def parked(self, seen: Position) -> None:
        """A stream of the project caught up: it has seen everything it may read up to
        ``seen``, and waits for a wake-up."""
        if self._floor is None or seen < self._floor:
            self._floor = seen
        if self._lowered is None or seen < self._lowered:
            self._lowered = seen

    async def _run(self) -> None:
        with self._hub.listen_watch(self._project_id) as poke:
            while True:
                poke.event.clear()
                try:
                    await self.check()
                except Exception:
                    # The streams keep waiting for wake-ups; the next check tries again, and
                    # wakes them all, since it cannot tell what changed meanwhile.
                    logger.exception("could not check the log of project %s", self._project_id)
                    self._access = None
                self._ready.set()
                await poke.event.wait(self._next_check())

    def _next_check(self) -> float:
        """Seconds to the next check: the poll interval, or less when a run comes due first."""
        due = (r.refresh_in() for r in self._runs)
        return min([jittered(self._poll), *(d for d in due if d is not None)])

    async def check(self) -> None:
        """Wake the streams that have something new to read, and every stream and dashboard
        of the project when access changed."""
        floor, self._lowered = self._floor, None
        users = self._hub.listening_users(self._project_id)
        async with self._db.snapshot() as session:
            upper = await horizon(session)
            found: dict[str, set[int] | None] = {}
            if floor is not None and floor < upper and users:
                found = await _readable(session, self._project_id, users, floor, upper)
            access = await _access(session, self._project_id)
        for user, table_ids in found.items():
            self._hub.wake(self._project_id, user, table_ids)
        if access != self._access and self._ready.is_set():
            self._hub.wake_access(self._project_id)
        self._access = access
        if floor is not None:
            # Everything up to the horizon is now seen or woken for, except by streams that
            # parked meanwhile with less.
            risen = max(floor, upper)
            self._floor = risen if self._lowered is None else min(risen, self._lowered)
        await self._touch_runs()
        self.checks += 1

    async def _touch_runs(self) -> None:
        """Touch the runs due before the next check (a bit early rather than one by one)."""
        horizon_seconds = self._poll * 1.2  # the longest a jittered wait lasts
        due: dict[int, KeptRun] = {}
        for run in list(self._runs):
            left = run.refresh_in()
            if run.run_id is None or left is None:
                self._runs.discard(run)  # it ended
            elif left <= horizon_seconds:
                due[run.run_id] = run
        if not due:
            return
        ids = list(due)
        touched: set[int] = set()
        events = next(iter(due.values())).events  # the gateway's: every stream's is
        async with self._db.transaction() as session:
            now = utcnow()
            for i in range(0, len(ids), _RUNS_PER_UPDATE):
                statement = (
                    update(SyncRun)
                    .where(
                        SyncRun.id.in_(ids[i : i + _RUNS_PER_UPDATE]),  # type: ignore[union-attr]
                        SyncRun.status == SyncRunStatus.WORKING.value,
                    )
                    .values(updated_at=now)
                    .returning(SyncRun.id)
                )
                touched.update((await session.scalars(statement)).all())
            changes = Changes(runs=await load_runs(session, sorted(touched)) if touched else [])
            await events.staged(session, changes)
        for run_id, run in due.items():
            run.touched(run_id in touched)
        await events.committed(changes)


# PostgreSQL: one index seek per user on the log's (project, user, xid, id) index, whatever the
# log holds (a join or an ANY filter would scan the project's whole index instead). Only whether
# a user has something new: the first new action's table is not enough to know which of the
# user's streams want it, so all of them are woken.
_PG_READABLE = text(
    """
    SELECT u.user_id
    FROM unnest(CAST(:users AS varchar[])) AS u(user_id)
    CROSS JOIN LATERAL (
        SELECT FROM actions AS a
        WHERE a.project_id = :project AND a.user_id = u.user_id
          AND a.xid >= CAST(:after_xid AS bigint)
          AND (a.xid, a.id) > (CAST(:after_xid AS bigint), CAST(:after_id AS bigint))
          AND (a.xid, a.id) <= (CAST(:upper_xid AS bigint), CAST(:upper_id AS bigint))
        ORDER BY a.xid, a.id
        LIMIT 1
    ) AS found
    """
).bindparams(bindparam("users", type_=ARRAY(String)))


async def _readable(
    session: AsyncSession, project_id: int, users: list[str], after: Position, upper: Position
) -> dict[str, set[int] | None]:
    """Who has actions in (after, upper] of the project, and in which tables (None: maybe
    any)."""
    if session.get_bind().dialect.name == "postgresql":
        found = await session.execute(
            _PG_READABLE,
            {
                "users": users,
                "project": project_id,
                "after_xid": after.xid,
                "after_id": after.id,
                "upper_xid": upper.xid,
                "upper_id": upper.id,
            },
        )
        return dict.fromkeys(found.scalars(), None)
    # SQLite: ids are in commit order, so the primary key's range holds just what is new. Its
    # rows may name users without a stream here: waking them wakes no one.
    query = (
        select(Action.user_id, Action.table_id)
        .distinct()
        .where(Action.id > after.id, Action.id <= upper.id, Action.project_id == project_id)
    )
    tables: dict[str, set[int] | None] = {}
    for user, table_id in (await session.execute(query)).all():
        tables.setdefault(user, set()).add(table_id)  # type: ignore[union-attr]
    return tables


async def _access(session: AsyncSession, project_id: int) -> tuple[Any, ...]:
    """What changes when who may see what in the project changes (a member or grant removed
    or added; the project opened, closed or deleted)."""
    member = ProjectMember.project_id == project_id
    grant = AccessGrant.project_id == project_id
    columns = [
        select(Project.open).where(Project.id == project_id),
        select(func.count()).select_from(ProjectMember).where(member),
        select(func.max(ProjectMember.created_at)).where(member),
        select(func.count()).select_from(AccessGrant).where(grant),
        select(func.max(AccessGrant.id)).where(grant),
        select(func.max(AccessGrant.created_at)).where(grant),
    ]
    return tuple((await session.execute(select(*(c.scalar_subquery() for c in columns)))).one())


class LogWatches(SharedFeeds[int, LogWatch]):
    """The watches of the projects that have live streams, started and stopped with them."""

    def __init__(self, db: Database, hub: Hub, poll_seconds: float) -> None:
        super().__init__(lambda project_id: LogWatch(db, hub, project_id, poll_seconds))


def log_watches(hub: Hub, db: Database, poll_seconds: float) -> LogWatches:
    """The hub's watches, made by the first stream (the hub is built without a database)."""
    if hub.log_watches is None:
        hub.log_watches = LogWatches(db, hub, poll_seconds)
    watches: LogWatches = hub.log_watches
    return watches
