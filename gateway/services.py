"""What a running gateway holds for its requests: settings, database, tokens, users, live hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from gateway.auth.tokens import TokenService
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.db.types import utcnow
from gateway.live.announce import Announcer, announcer_for
from gateway.live.hub import Hub
from gateway.live.runs import RunFeeds
from gateway.live.status import StatusFeeds
from gateway.push.dispatcher import PushDispatcher, dispatcher_for
from gateway.settings import Settings
from gateway.sync.devices import HealthRules
from gateway.sync.runs import SWEEP_BATCH, RunInfo, prune_finished_runs, sweep_runs

logger = logging.getLogger("gateway")
_PRUNE_SECONDS = 600.0  # runs expire in days: pruning every few minutes is plenty


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    tokens: TokenService
    users: UserRegistry
    hub: Hub
    announcer: Announcer
    push: PushDispatcher | None
    status_feeds: StatusFeeds
    run_feeds: RunFeeds
    _run_sweeper: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Services:
        db = Database(
            settings.database_url,
            idle_in_transaction_timeout_ms=settings.pg_idle_in_transaction_timeout_ms,
        )
        hub = Hub()
        return cls(
            settings=settings,
            db=db,
            tokens=TokenService(settings),
            users=UserRegistry(db),
            hub=hub,
            announcer=announcer_for(db, hub),
            push=dispatcher_for(db, settings),
            status_feeds=StatusFeeds(
                db,
                hub,
                HealthRules(settings.device_stale_seconds, settings.device_offline_seconds),
                settings.live_poll_seconds,
            ),
            run_feeds=RunFeeds(db, hub, settings.live_poll_seconds),
        )

    async def status_changed(self, project: str) -> None:
        """Something that changes a project's sync status happened: wake its dashboards, on
        every replica. Best effort, like ``actions_written``."""
        try:
            await self.announcer.announce_status(project)
        except Exception:
            logger.exception("could not announce a status change of %s", project)

    async def access_changed(self, project_id: int) -> None:
        """Who may see what changed in a project (a grant, a membership): its live
        subscriptions look again, at once here and, through the bus, on every replica (the
        others re-check within ``GATEWAY_LIVE_POLL_SECONDS`` anyway)."""
        try:
            await self.announcer.announce_access(project_id)
        except Exception:
            logger.exception("could not announce an access change in project %s", project_id)

    async def runs_changed(self, runs: Iterable[RunInfo]) -> None:
        """Runs changed (committed): wake their live subscribers on every replica. Best effort,
        like ``actions_written``: a lost wake-up is caught by the feeds' periodic re-read."""
        by_project: dict[int, set[int]] = defaultdict(set)
        for run in runs:
            by_project[run.project_id].add(run.id)
        for project_id, run_ids in by_project.items():
            try:
                await self.announcer.announce_runs(project_id, run_ids)
            except Exception:
                logger.exception("could not announce changed sync runs of %s", project_id)

    async def _sweep_runs_forever(self) -> None:
        """Fail WORKING runs that timed out and start QUEUED runs whose time came. Every
        replica sweeps; the conditional UPDATEs change each run once."""
        timeout = self.settings.sync_run_timeout_seconds
        interval = min(5.0, timeout / 4)
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.runs_changed(await sweep_runs(self.db, timeout))
                retention = self.settings.sync_run_retention_days
                if retention and loop.time() >= next_prune:
                    pruned = await prune_finished_runs(self.db, utcnow(), retention)
                    # A full batch means more wait: prune again at the next sweep.
                    pause = min(_PRUNE_SECONDS, retention * 86_400 / 4)
                    next_prune = loop.time() + (0 if pruned >= SWEEP_BATCH else pause)
            except Exception:
                logger.exception("could not sweep sync runs")

    async def actions_written(
        self, project_id: int, user: str, table_ids: Collection[int], device_id: str | None
    ) -> None:
        """A batch committed: wake live readers on every replica, and queue pushes here (only
        the writing replica pushes, so a device is not woken once per replica)."""
        try:
            await self.announcer.announce(project_id, user, table_ids)
        except Exception:
            # The batch is committed: a lost wake-up only delays readers until their next
            # re-read, while failing here would tell the device its write failed.
            logger.exception("could not announce a committed batch")
        if self.push is not None:
            self.push.written(project_id, user, table_ids, device_id)

    async def start(self) -> None:
        await self.announcer.start()
        if self.push is not None:
            await self.push.start()
        self._run_sweeper = asyncio.create_task(self._sweep_runs_forever(), name="run-sweeper")

    async def stop(self) -> None:
        if self._run_sweeper is not None:
            self._run_sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_sweeper
        if self.push is not None:
            await self.push.stop()
        await self.announcer.stop()
