"""Wake-ups for live readers, per project and user.

A wake-up only says "look at the log again": a woken reader reads from the log with its own
cursor. So wake-ups can be coalesced (one pending per subscriber, however many writes) or lost
(each project's ``LogWatch`` re-checks the log periodically, see ``watch.py``) without losing or
repeating any action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from gateway.live.watch import LogWatches

_K = TypeVar("_K")


@dataclass(eq=False, slots=True)
class Waiter:
    """One subscriber's doorbell: at most one pending wake-up, whatever happens meanwhile."""

    tables: frozenset[int] | None  # None: any table of the project
    event: asyncio.Event = field(default_factory=asyncio.Event)

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
        return _registered(self._runs, project_id, RunWaiter(None))

    def wake_runs(self, project_id: int, run_ids: Iterable[int]) -> None:
        ids = set(run_ids)
        for waiter in self._runs.get(project_id, ()):
            waiter.run_ids |= ids
            waiter.event.set()

    def listen_access(self, project_id: int) -> AbstractContextManager[Waiter]:
        """Woken when who may see what changes in a project (grants, memberships)."""
        return _registered(self._access, project_id, Waiter(None))

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
        return _registered(self._watches, project_id, Waiter(None))

    def listening_users(self, project_id: int) -> list[str]:
        """The users whose actions someone streams live in the project."""
        return [user for (waiter_project, user) in self._waiters if waiter_project == project_id]

    def listen_status(self, project: str) -> AbstractContextManager[Waiter]:
        """Woken when anything that changes a project's sync status happens."""
        return _registered(self._status, project, Waiter(None))

    def wake_status(self, project: str) -> None:
        for waiter in self._status.get(project, ()):
            waiter.event.set()

    def listen(
        self, project_id: int, user: str, tables: Iterable[int] | None = None
    ) -> AbstractContextManager[Waiter]:
        """Register before reading, so that nothing committed after the read can be missed."""
        waiter = Waiter(frozenset(tables) if tables is not None else None)
        return _registered(self._waiters, (project_id, user), waiter)

    def wake(self, project_id: int, user: str, table_ids: Iterable[int]) -> None:
        tables = frozenset(table_ids)
        for waiter in self._waiters.get((project_id, user), ()):
            if waiter.wants(tables):
                waiter.event.set()

    def wake_all(self) -> None:
        """After a wake-up may have been lost (the LISTEN connection dropped). Action streams
        are not woken one by one: their projects' watches look for what they missed."""
        registries = (self._watches, self._status, self._runs, self._access)
        for waiters in (w for registry in registries for w in registry.values()):
            for waiter in waiters:
                waiter.event.set()

    @property
    def subscribers(self) -> int:
        return sum(len(w) for w in self._waiters.values())


@contextmanager
def _registered(registry: dict[_K, set[_W]], key: _K, waiter: _W) -> Iterator[_W]:
    """``waiter`` in ``registry[key]`` while the block runs; an emptied set goes, so that the
    registry holds only what someone listens to."""
    registry.setdefault(key, set()).add(waiter)
    try:
        yield waiter
    finally:
        waiters = registry.get(key)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del registry[key]
