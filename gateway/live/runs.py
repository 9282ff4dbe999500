"""Live sync runs for dashboards (``syncRunUpdated``).

Whoever changes runs announces their ids after committing (``Services.sync_runs_changed``): on
PostgreSQL through NOTIFY to every replica. Each replica keeps one feed per watched project,
however many dashboards watch it: woken with the changed ids, it reads those runs once and
offers each to every subscriber, which keeps only the runs its role and ``syncId`` allow.

A subscriber that falls behind is not queued for: it holds the latest state of each changed run
(so two quick changes may reach it as one, never out of order). A lost wake-up only delays: the
feed re-reads the runs changed lately every ``poll_seconds``, and at once when its LISTEN
connection came back (the hub's ``wake_all``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.types import utcnow
from gateway.errors import Forbidden, NotFound
from gateway.live.feeds import SharedFeeds
from gateway.live.guard import Guard, narrowed
from gateway.live.hub import Hub, RunWaiter
from gateway.sync.runs import RunInfo, active_runs, run_scope, runs_by_id, runs_changed_since
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.live")

# How far back a re-read looks: a change stamped ``updated_at`` may commit this much later.
COMMIT_LAG = timedelta(seconds=60)


@dataclass(eq=False, slots=True)
class RunWatch:
    """One subscriber: the latest state of each changed run it may see, in order of change."""

    visible: set[str] | None  # whose runs (None: everyone's)
    sync_id: int | None
    pending: dict[int, RunInfo] = field(default_factory=dict)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, run: RunInfo) -> None:
        if self.sync_id is not None and run.sync_id != self.sync_id:
            return
        if self.visible is not None and run.owner not in self.visible:
            return
        self.pending.pop(run.id, None)
        self.pending[run.id] = run
        self.event.set()

    def take(self) -> list[RunInfo]:
        self.event.clear()
        runs = list(self.pending.values())
        self.pending.clear()
        return runs


class RunFeed:
    def __init__(self, db: Database, hub: Hub, project_id: int, poll_seconds: float) -> None:
        self._db, self._hub, self._project_id, self._poll = db, hub, project_id, poll_seconds
        self.watches: set[RunWatch] = set()
        self._published: dict[int, datetime] = {}  # run id: updated_at last offered
        self._listening = ExitStack()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # Registered before any subscriber reads its first runs: no later change is missed.
        waiter = self._listening.enter_context(self._hub.listen_runs(self._project_id))
        self._task = asyncio.create_task(self._run(waiter), name=f"run-feed-{self._project_id}")

    async def stop(self) -> None:
        await cancelled(self._task)
        self._listening.close()

    async def _run(self, waiter: RunWaiter) -> None:
        loop = asyncio.get_running_loop()
        since = utcnow()
        next_reread = loop.time() + self._poll
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), max(0.0, next_reread - loop.time()))
            waiter.event.clear()
            ids, waiter.run_ids = waiter.run_ids, set()
            reread = not ids or loop.time() >= next_reread
            started = utcnow()
            try:
                runs = await runs_by_id(self._db, ids) if ids else []
                if reread:
                    runs += await runs_changed_since(self._db, self._project_id, since - COMMIT_LAG)
            except Exception:
                logger.exception("could not read the sync runs of project %s", self._project_id)
                next_reread = loop.time() + min(self._poll, 1.0)
                continue
            if reread:
                since, next_reread = started, loop.time() + self._poll
                horizon = since - 2 * COMMIT_LAG  # what a re-read can no longer return
                self._published = {i: t for i, t in self._published.items() if t >= horizon}
            self._publish(runs)

    def _publish(self, runs: list[RunInfo]) -> None:
        for run in runs:
            last = self._published.get(run.id)
            if run.project_id != self._project_id or (last is not None and run.updated_at <= last):
                continue  # offered already (a re-read sees recent runs again)
            self._published[run.id] = run.updated_at
            for watch in self.watches:
                watch.offer(run)


class RunFeeds:
    """The feeds of the projects that have subscribers, started and stopped with them."""

    def __init__(self, db: Database, hub: Hub, poll_seconds: float) -> None:
        self._shared = SharedFeeds(lambda project_id: RunFeed(db, hub, project_id, poll_seconds))

    def watchers(self, project_id: int) -> int:
        return self._shared.watchers(project_id)

    @asynccontextmanager
    async def watch(
        self, project_id: int, visible: set[str] | None, sync_id: int | None
    ) -> AsyncIterator[RunWatch]:
        async with self._shared.watch(project_id) as feed:
            watch = RunWatch(visible, sync_id)
            feed.watches.add(watch)
            try:
                yield watch
            finally:
                feed.watches.discard(watch)


async def sync_run_changes(
    feeds: RunFeeds,
    db: Database,
    hub: Hub,
    principal: Principal,
    project: str,
    sync_id: int | None,
    poll_seconds: float,
) -> AsyncIterator[RunInfo]:
    """First the QUEUED and WORKING runs, then every run as it changes. Ends with FORBIDDEN
    once the caller may no longer see runs it was shown (a grant revoked, a membership
    removed)."""
    project_id, visible = await run_scope(db, principal, project, sync_id)

    async def recheck() -> None:
        try:
            now = (await run_scope(db, principal, project, sync_id))[1]
        except NotFound as gone:  # the sync itself went out of sight
            raise Forbidden("access to the runs of this sync was withdrawn") from gone
        if narrowed(watch.visible, now):
            raise Forbidden("access to runs this subscription showed was withdrawn")
        watch.visible = now

    guard = Guard(principal, poll_seconds, recheck)
    async with feeds.watch(project_id, visible, sync_id) as watch:
        with guard.watching(hub, project_id):
            first = await active_runs(db, project_id, visible, sync_id)
            # The feed may still offer states older than these first ones: they are passed over.
            shown = {run.id: run.updated_at for run in first}
            for run in first:
                yield run
            while True:
                await guard.wait(watch.event.wait())
                for run in watch.take():
                    before = shown.pop(run.id, None)
                    if before is not None and run.updated_at <= before:
                        shown[run.id] = before
                        continue
                    yield run
