"""What a running gateway holds for its requests (settings, database, tokens, users, live hub,
feeds, push, the run sweeper): built from Settings, started and stopped here. It is also the
domain's ``Events``: what a commit announces reaches this replica's subscribers, the other
replicas (through the bus) and push."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.tokens import TokenService
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.live.announce import Announcer, announcer_for
from gateway.live.hub import Hub
from gateway.live.runs import RunFeeds
from gateway.live.status import StatusFeeds
from gateway.observability.metrics import Metrics
from gateway.push.dispatcher import PushDispatcher, dispatcher_for
from gateway.settings import Settings
from gateway.sync.devices import HealthRules
from gateway.sync.events import Changes
from gateway.sync.replicas import ReplicaHeartbeat, new_replica_id
from gateway.sync.runs import RunInfo, RunSweeper

logger = logging.getLogger("gateway")


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
    replica_id: str
    run_sweeper: RunSweeper = field(init=False)  # announces through these services
    metrics: Metrics = field(default_factory=Metrics)
    heartbeat: ReplicaHeartbeat = field(init=False)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        db = Database(
            settings.database_url,
            idle_in_transaction_timeout_ms=settings.pg_idle_in_transaction_timeout_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout_seconds=settings.db_pool_timeout_seconds,
        )
        hub = Hub()
        services = cls(
            settings=settings,
            db=db,
            tokens=TokenService(settings),
            users=UserRegistry(db),
            hub=hub,
            announcer=announcer_for(db, hub, settings.bus, settings.bus_coalesce_ms / 1000),
            push=dispatcher_for(db, settings),
            status_feeds=StatusFeeds(
                db,
                hub,
                HealthRules(settings.device_stale_seconds, settings.device_offline_seconds),
                settings.live_poll_seconds,
            ),
            run_feeds=RunFeeds(db, hub, settings.live_poll_seconds),
            metrics=Metrics.from_settings(settings),
            replica_id=new_replica_id(),
        )
        if services.push is not None:
            services.push.on_outcome = services.metrics.push_outcome
        services.run_sweeper = RunSweeper(
            db, services, settings.sync_run_timeout_seconds, settings.sync_run_retention_days
        )
        services.heartbeat = ReplicaHeartbeat(
            db,
            services,
            services.replica_id,
            beat_seconds=settings.replica_beat_seconds,
            lost_seconds=settings.replica_lost_seconds,
        )
        return services

    async def status_changed(self, project: str) -> None:
        """Something that changes a project's sync status happened: wake its dashboards, on
        every replica. Best effort, like ``actions_written``."""
        try:
            await self.announcer.announce_status(project)
        except Exception:
            logger.exception("could not announce a status change of %s", project)
            self.metrics.publish_failed("status")

    async def access_changed(self, project_id: int) -> None:
        """Who may see what changed in a project (a grant, a membership): its live
        subscriptions look again, at once here and, through the bus, on every replica (the
        others re-check within ``GATEWAY_LIVE_POLL_SECONDS`` anyway)."""
        try:
            await self.announcer.announce_access(project_id)
        except Exception:
            logger.exception("could not announce an access change in project %s", project_id)
            self.metrics.publish_failed("access")

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
                self.metrics.publish_failed("runs")

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
            self.metrics.publish_failed("actions")
        if self.push is not None:
            self.push.written(project_id, user, table_ids, device_id)

    async def staged(self, session: AsyncSession, changes: Changes) -> None:
        """On the PostgreSQL bus the commit's one NOTIFY joins its transaction: not best
        effort like the others, but one statement, and it cannot announce what was rolled
        back."""
        changes.staged = await self.announcer.stage(session, changes)

    async def committed(self, changes: Changes) -> None:
        """After the commit: what ``staged`` could not send, as one message (the NATS bus,
        SQLite, or a staging that failed), best effort; then push, from this replica only."""
        self.metrics.written(sum(w.count for w in changes.written))
        if not changes.staged:
            try:
                await self.announcer.publish(changes)
            except Exception:
                logger.exception("could not announce a commit")
                for kind, what in (
                    ("actions", changes.written),
                    ("runs", changes.runs),
                    ("status", changes.statuses),
                    ("access", changes.access),
                ):
                    if what:
                        self.metrics.publish_failed(kind)
        if self.push is not None:
            for w in changes.written:
                self.push.written(w.project_id, w.user, w.table_ids, w.device_id)

    async def start(self) -> None:
        await self.announcer.start()
        if self.push is not None:
            await self.push.start()
        self.run_sweeper.start()
        await self.heartbeat.start()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.run_sweeper.stop()
        if self.push is not None:
            await self.push.stop()
        await self.announcer.stop()
