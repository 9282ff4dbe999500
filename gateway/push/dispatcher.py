"""Deciding and sending pushes after a write, off the write path.

After a batch commits, the replica that wrote it queues one event (never blocking the write).
A worker finds the registrations of that user whose tables changed (not the device that wrote),
and schedules one message per device and table, coalescing everything that arrives within
``coalesce_seconds`` into it. A failed send is retried with exponential backoff; a token the
service reports as unregistered is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import select

from gateway.db import Database
from gateway.db.models import Project, ProjectTable
from gateway.push.registrations import forget_token, registrations_of
from gateway.push.transports import (
    AccessTokens,
    Delivery,
    FcmTransport,
    PushMessage,
    ServiceAccountTokens,
    StaticAccessToken,
    Transport,
    WebhookTransport,
)
from gateway.settings import PushMode, Settings
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.push")


@dataclass(frozen=True, slots=True)
class _Written:
    project_id: int
    user: str
    table_ids: frozenset[int]
    device_id: str | None


class PushDispatcher:
    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        coalesce_seconds: float = 2.0,
        max_attempts: int = 5,
        retry_base_seconds: float = 0.5,
        queue_size: int = 10_000,
    ) -> None:
        self._db = db
        self._transport = transport
        self._coalesce = coalesce_seconds
        self._max_attempts = max_attempts
        self._retry_base = retry_base_seconds
        self._queue: asyncio.Queue[_Written] = asyncio.Queue(maxsize=queue_size)
        self._pending: set[tuple[int, str, str, str]] = set()  # project, user, device, table
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        # Told each push's outcome (sent, unregistered, rejected; failed after every retry).
        self.on_outcome: Callable[[str], None] = lambda _: None

    def written(
        self, project_id: int, user: str, table_ids: Collection[int], device_id: str | None
    ) -> None:
        """Note a committed batch. Never blocks: when the queue is full the push is dropped
        (the devices still get the data at their next read)."""
        try:
            self._queue.put_nowait(_Written(project_id, user, frozenset(table_ids), device_id))
        except asyncio.QueueFull:
            logger.warning("push queue full; dropping a wake-up for %s", user)

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="gateway-push")

    async def stop(self) -> None:
        await cancelled(self._worker, *self._tasks)
        await self._transport.close()

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._schedule(event)
            except Exception:  # one bad event must not stop later pushes
                logger.exception("could not schedule pushes for %s", event)

    async def _schedule(self, event: _Written) -> None:
        async with self._db.session() as session:
            project = await session.get(Project, event.project_id)
            names = dict(
                (
                    await session.execute(
                        select(ProjectTable.id, ProjectTable.name).where(
                            ProjectTable.id.in_(event.table_ids)  # type: ignore[union-attr]
                        )
                    )
                ).all()
            )
        if project is None:
            return
        for registration in await registrations_of(
            self._db, event.project_id, project.code, event.user
        ):
            if registration.device_id == event.device_id:
                continue  # the device that wrote knows already
            for table in sorted(names.values()):
                key = (event.project_id, event.user, registration.device_id, table)
                if not registration.covers(table) or key in self._pending:
                    continue
                self._pending.add(key)
                message = PushMessage(registration.token, project.code, event.user, table)
                task = asyncio.create_task(self._deliver(key, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, key: tuple[int, str, str, str], message: PushMessage) -> None:
        await asyncio.sleep(self._coalesce)
        self._pending.discard(key)  # what is written from now on gets its own message
        for attempt in range(1, self._max_attempts + 1):
            outcome = await self._transport.send(message)
            if outcome is not Delivery.RETRY:
                self.on_outcome(outcome.value)
            if outcome is Delivery.SENT:
                return
            if outcome is Delivery.UNREGISTERED:
                project_id, user, device_id, _ = key
                await forget_token(self._db, project_id, user, device_id, message.token)
                logger.info("forgot the push token of device %s of %s", device_id, user)
                return
            if outcome is Delivery.REJECTED:
                logger.warning("push to device %s was rejected", key[2])
                return
            if attempt < self._max_attempts:
                await asyncio.sleep(self._retry_base * 2 ** (attempt - 1))
        self.on_outcome("failed")
        logger.warning("push to device %s failed %d times; giving up", key[2], self._max_attempts)


def dispatcher_for(db: Database, settings: Settings) -> PushDispatcher | None:
    """The dispatcher the settings ask for, or None when pushes are off."""
    transport: Transport
    match settings.push_mode:
        case PushMode.OFF:
            return None
        case PushMode.WEBHOOK:
            assert settings.push_endpoint is not None
            transport = WebhookTransport(settings.push_endpoint)
        case PushMode.FCM:
            assert settings.push_fcm_project_id is not None
            tokens: AccessTokens = (
                StaticAccessToken(settings.push_fcm_access_token)
                if settings.push_fcm_access_token
                else ServiceAccountTokens(settings.push_fcm_credentials_file or "")
            )
            transport = FcmTransport(
                settings.push_fcm_project_id,
                tokens,
                base_url=settings.push_endpoint or "https://fcm.googleapis.com",
            )
    return PushDispatcher(
        db,
        transport,
        coalesce_seconds=settings.push_coalesce_seconds,
        max_attempts=settings.push_max_attempts,
        retry_base_seconds=settings.push_retry_base_seconds,
    )
