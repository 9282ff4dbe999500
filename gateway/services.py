"""What a running gateway holds for its requests: settings, database, tokens, users, live hub."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from gateway.auth.tokens import TokenService
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.live.announce import Announcer, announcer_for
from gateway.live.hub import Hub
from gateway.live.status import StatusFeeds
from gateway.push.dispatcher import PushDispatcher, dispatcher_for
from gateway.settings import Settings
from gateway.sync.devices import HealthRules

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
        )

    async def status_changed(self, project: str) -> None:
        """Something that changes a project's sync status happened: wake its dashboards, on
        every replica. Best effort, like ``after_write``."""
        try:
            await self.announcer.announce_status(project)
        except Exception:
            logger.exception("could not announce a status change of %s", project)

    async def after_write(
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

    async def stop(self) -> None:
        if self.push is not None:
            await self.push.stop()
        await self.announcer.stop()
