"""Wake-ups for live readers, per project and user.

A wake-up only says "look at the log again": a woken reader reads from the log with its own
cursor. So wake-ups can be coalesced (one pending per subscriber, however many writes) or lost
(each project's ``LogWatch`` re-checks the log periodically, see ``watch.py``) without losing or
repeating any action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from gateway.live.watch import LogWatches

_K = TypeVar("_K")


class Doorbell:
    """``asyncio.Event`` for a single waiting task, in a fraction of its memory (an idle
    subscription holds one): a future exists only while the task waits."""

    __slots__ = ("_rung", "_waiting")

    def __init__(self) -> None:
        self._rung = False
        self._waiting: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._rung

    def set(self) -> None:
        self._rung = True
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    def clear(self) -> None:
        self._rung = False

    async def wait(self, within: float | None = None) -> bool:
        """Whether it rang: False when ``within`` seconds passed first (no task, one timer)."""
        if self._rung:
            return True
        if self._waiting is not None:
            raise RuntimeError("a doorbell has one waiting task at a time")
        loop = asyncio.get_running_loop()
        waiting = self._waiting = loop.create_future()
        timer = None if within is None else loop.call_later(within, _expire, waiting)
        try:
            await waiting
        finally:
            self._waiting = None
            if timer is not None:
                timer.cancel()
        return self._rung


def _expire(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


@dataclass(eq=False, slots=True)
class Waiter:
    """One subscriber's doorbell: at most one pending wake-up, whatever happens meanwhile."""

    tables: frozenset[int] | None  # None: any table of the project
    event: Doorbell = field(default_factory=Doorbell)

    def wants(self, table_ids: Iterable[int]) -> bool:
        return self.tables is None or not self.tables.isdisjoint(table_ids)


@dataclass(eq=False, slots=True)
class RunWaiter(Waiter):
    """A sync-run feed's doorbell, with the ids of the runs that changed since it last looked
    (none after ``wake_all``: look at everything recent)."""

    run_ids: set[int] = field(default_factory=set)


_W = TypeVar("_W", bound=Waiter)


class Hub:
    def __init__(self) -> None:
        self._waiters: dict[tuple[int, str], set[Waiter]] = {}
        self._status: dict[str, set[Waiter]] = {}  # per project code: dashboards
        self._runs: dict[int, set[RunWaiter]] = {}  # per project id: sync-run feeds
        self._access: dict[int, set[Waiter]] = {}  # per project id: live dashboards
        self._watches: dict[int, set[Waiter]] = {}  # per project id: its LogWatch
        self.log_watches: LogWatches | None = None  # made by the first stream (watch.py)

    def listen_runs(self, project_id: int) -> AbstractContextManager[RunWaiter]:
        """Woken with the ids of the project's sync runs that changed."""
        return _Registered(self._runs, project_id, RunWaiter(None))

    def wake_runs(self, project_id: int, run_ids: Iterable[int]) -> None:
        ids = set(run_ids)
        for waiter in self._runs.get(project_id, ()):
            waiter.run_ids |= ids
            waiter.event.set()

    def listen_access(self, project_id: int) -> AbstractContextManager[Waiter]:
        """Woken when who may see what changes in a project (grants, memberships)."""
        return _Registered(self._access, project_id, Waiter(None))

    def wake_access(self, project_id: int) -> None:
        """Dashboards and action streams alike: a stream re-reads through the access rule."""
        for waiter in self._access.get(project_id, ()):
            waiter.event.set()
        for (waiter_project, _user), waiters in self._waiters.items():
            if waiter_project == project_id:
                for waiter in waiters:
                    waiter.event.set()

    def listen_watch(self, project_id: int) -> AbstractContextManager[Waiter]:
        """A project's ``LogWatch``: woken when a wake-up may have been lost."""
        return _Registered(self._watches, project_id, Waiter(None))

    def listening_users(self, project_id: int) -> list[str]:
        """The users whose actions someone streams live in the project."""
        return [user for (waiter_project, user) in self._waiters if waiter_project == project_id]

    def listen_status(self, project: str) -> AbstractContextManager[Waiter]:
        """Woken when anything that changes a project's sync status happens."""
        return _Registered(self._status, project, Waiter(None))

    def wake_status(self, project: str) -> None:
        for waiter in self._status.get(project, ()):
            waiter.event.set()

    def listen(
        self, project_id: int, user: str, tables: Iterable[int] | None = None
    ) -> AbstractContextManager[Waiter]:
        """Register before reading, so that nothing committed after the read can be missed."""
        waiter = Waiter(frozenset(tables) if tables is not None else None)
        return _Registered(self._waiters, (project_id, user), waiter)

    def wake(self, project_id: int, user: str, table_ids: Iterable[int] | None) -> None:
        """``table_ids`` None: whatever tables the user's readers want."""
        tables = None if table_ids is None else frozenset(table_ids)
        for waiter in self._waiters.get((project_id, user), ()):
            if tables is None or waiter.wants(tables):
                waiter.event.set()

    def wake_all(self) -> None:
        """After a wake-up may have been lost (the bus connection dropped). Action streams
        are not woken one by one: their projects' watches look for what they missed."""
        registries = (self._watches, self._status, self._runs, self._access)
        for waiters in (w for registry in registries for w in registry.values()):
            for waiter in waiters:
                waiter.event.set()

    @property
    def subscribers(self) -> int:
        return sum(len(w) for w in self._waiters.values())


class _Registered(Generic[_K, _W]):
    """``waiter`` in ``registry[key]`` while the block runs; an emptied set goes, so that the
    registry holds only what someone listens to. A class, not a generator: an idle
    subscription holds one for its whole life."""

    __slots__ = ("_key", "_registry", "_waiter")

    def __init__(self, registry: dict[_K, set[_W]], key: _K, waiter: _W) -> None:
        self._registry, self._key, self._waiter = registry, key, waiter

    def __enter__(self) -> _W:
        self._registry.setdefault(self._key, set()).add(self._waiter)
        return self._waiter

    def __exit__(self, *_: object) -> None:
        waiters = self._registry.get(self._key)
        if waiters is not None:
            waiters.discard(self._waiter)
            if not waiters:
                del self._registry[self._key]
