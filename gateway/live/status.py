"""Live device status for dashboards (``deviceStatusChanged``).

Statuses are computed once per change per project, however many dashboards watch it: one feed
per project recomputes the devices' health when the hub says something changed (a write, a
read, a heartbeat, an acknowledgement, on any replica) and at least every ``poll_seconds``
(STALE and OFFLINE come with the passing of time). Every subscriber shares that snapshot and
sees only the devices its role allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.live.hub import Hub
from gateway.live.stream import check_token, wait_seconds
from gateway.sync.devices import DeviceInfo, DeviceStatus, HealthRules, list_devices, viewers

_GATEWAY = Principal("gateway", Role.ADMIN)  # the feed computes for all; subscribers filter


class StatusFeed:
    def __init__(
        self, db: Database, hub: Hub, project: str, rules: HealthRules, poll_seconds: float
    ) -> None:
        self._db, self._hub, self._project = db, hub, project
        self._rules, self._poll = rules, poll_seconds
        self.snapshot: dict[str, DeviceInfo] = {}
        self.version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"status-feed-{self._project}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def next(self, after: int) -> tuple[int, dict[str, DeviceInfo]]:
        """The first snapshot newer than version ``after``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after)
            return self.version, self.snapshot

    async def _run(self) -> None:
        with self._hub.listen_status(self._project) as waiter:
            while True:
                waiter.event.clear()
                devices = await list_devices(self._db, _GATEWAY, self._project, rules=self._rules)
                async with self._changed:
                    self.snapshot = {d.device_id: d for d in devices}
                    self.version += 1
                    self._changed.notify_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), self._poll)


class StatusFeeds:
    """The feeds of the projects that have dashboards watching, started and stopped with them."""

    def __init__(self, db: Database, hub: Hub, rules: HealthRules, poll_seconds: float) -> None:
        self._db, self._hub, self._rules, self._poll = db, hub, rules, poll_seconds
        self._feeds: dict[str, tuple[StatusFeed, int]] = {}

    def watchers(self, project: str) -> int:
        return self._feeds.get(project, (None, 0))[1]

    @asynccontextmanager
    async def watch(self, project: str) -> AsyncIterator[StatusFeed]:
        feed, watchers = self._feeds.get(project, (None, 0))
        if feed is None:
            feed = StatusFeed(self._db, self._hub, project, self._rules, self._poll)
            feed.start()
        self._feeds[project] = (feed, watchers + 1)
        try:
            yield feed
        finally:
            feed, watchers = self._feeds[project]
            if watchers == 1:
                del self._feeds[project]
                await feed.stop()
            else:
                self._feeds[project] = (feed, watchers - 1)


async def device_status_changes(
    feeds: StatusFeeds, db: Database, principal: Principal, project: str
) -> AsyncIterator[DeviceInfo]:
    """First every visible device, then each device whose status changes."""
    visible = await viewers(db, principal, project)
    seen: dict[str, DeviceStatus] = {}
    version = 0
    async with feeds.watch(project) as feed:
        while True:
            check_token(principal)
            try:
                version, snapshot = await asyncio.wait_for(
                    feed.next(version), wait_seconds(principal, float("inf"), jitter=False)
                )
            except TimeoutError:
                continue  # the token ran out: check_token ends the stream
            for device in snapshot.values():
                if visible is not None and device.owner not in visible:
                    continue
                if seen.get(device.device_id) is not device.status:
                    seen[device.device_id] = device.status
                    yield device
