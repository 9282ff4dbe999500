"""Live status for dashboards (``deviceStatusChanged``, ``syncStatusChanged``).

Statuses are computed once per change per project, however many dashboards watch it: one feed
per project recomputes the devices' health when the hub says something changed (a write, a
read, a heartbeat, an acknowledgement, on any replica) and at least every ``poll_seconds``
(STALE and OFFLINE come with the passing of time). Every subscriber shares that snapshot and
sees only the devices its role allows.

Sync status reports are per user: the feed also loads, in the same pass and with grouped
queries, the state of each user that a ``syncStatusChanged`` subscriber watches (and only of
those). Subscribers of the same user and options share one report per change; who may watch
whose report is checked when subscribing, with the access rule of ``syncStatus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.types import utcnow
from gateway.errors import Forbidden
from gateway.live.feeds import SharedFeeds
from gateway.live.guard import Guard, narrowed
from gateway.live.hub import Hub, Waiter
from gateway.sync.devices import (
    DeviceInfo,
    DeviceStatus,
    HealthRules,
    project_devices,
    viewers,
)
from gateway.sync.status import (
    ReportOptions,
    SyncStatusReport,
    UserState,
    build_report,
    project_states,
    report_owner,
)
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.live")
DeviceKey = tuple[str, str]  # owner, deviceId: a device


class StatusFeed:
    def __init__(
        self, db: Database, hub: Hub, project: str, rules: HealthRules, poll_seconds: float
    ) -> None:
        self._db, self._hub, self._project = db, hub, project
        self._rules, self._poll = rules, poll_seconds
        self.snapshot: dict[DeviceKey, DeviceInfo] = {}
        self.states: dict[str, UserState] = {}  # of the users whose reports are watched
        self.computed_at: datetime = utcnow()
        self.version = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._waiter: Waiter | None = None
        self._users: Counter[str] = Counter()  # syncStatusChanged subscribers per user
        self._listing: Counter[str] = Counter()  # those of them that list conflicts
        self._reports: dict[tuple[str, ReportOptions], SyncStatusReport] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"status-feed-{self._project}")

    async def stop(self) -> None:
        await cancelled(self._task)

    async def next(self, after: int) -> tuple[int, dict[DeviceKey, DeviceInfo]]:
        """The first snapshot newer than version ``after``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after)
            return self.version, self.snapshot

    @contextmanager
    def watch_user(self, user: str, *, listing: bool) -> Iterator[None]:
        """Keep ``user``'s state in the snapshots while a report subscriber needs it."""
        self._users[user] += 1
        if listing:
            self._listing[user] += 1
        if self._waiter is not None:  # compute it now rather than at the next change
            self._waiter.event.set()
        try:
            yield
        finally:
            self._users -= Counter({user: 1})
            if listing:
                self._listing -= Counter({user: 1})

    async def next_report(
        self, after: int, user: str, options: ReportOptions, support_contact: str | None
    ) -> tuple[int, SyncStatusReport]:
        """The report from the first snapshot newer than ``after`` that has ``user``'s state,
        built once per snapshot for all subscribers asking with the same options."""

        def ready() -> bool:
            state = self.states.get(user)
            return (
                self.version > after
                and state is not None
                and (not options.check_conflicts or state.conflicts is not None)
            )

        async with self._changed:
            await self._changed.wait_for(ready)
            report = self._reports.get((user, options))
            if report is None:
                report = build_report(
                    self._project, self.states[user], options, self.computed_at, support_contact
                )
                self._reports[(user, options)] = report
            return self.version, report

    async def _run(self) -> None:
        with self._hub.listen_status(self._project) as waiter:
            self._waiter = waiter
            while True:
                waiter.event.clear()
                users, listing = set(self._users), set(self._listing)
                try:
                    # Every device of the project: each subscriber keeps what it may see.
                    found = await project_devices(self._db, self._project, rules=self._rules)
                    devices = found[1] if found is not None else []
                    states = (
                        await project_states(self._db, self._project, devices, users, listing)
                        if users and found is not None
                        else {}
                    )
                except Exception:
                    # Dashboards keep the last snapshot; the next change or poll tries again.
                    logger.exception("could not compute the status of %s", self._project)
                else:
                    async with self._changed:
                        self.snapshot = {(d.owner, d.device_id): d for d in devices}
                        self.states, self.computed_at = states, utcnow()
                        self._reports = {}
                        self.version += 1
                        self._changed.notify_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), self._poll)


class StatusFeeds(SharedFeeds[str, StatusFeed]):
    """The feeds of the projects that have dashboards watching, started and stopped with them."""

    def __init__(self, db: Database, hub: Hub, rules: HealthRules, poll_seconds: float) -> None:
        super().__init__(lambda project: StatusFeed(db, hub, project, rules, poll_seconds))
        self._rules = rules

    @property
    def rules(self) -> HealthRules:
        return self._rules


async def device_status_changes(
    feeds: StatusFeeds,
    db: Database,
    hub: Hub,
    principal: Principal,
    project: str,
    poll_seconds: float,
) -> AsyncIterator[DeviceInfo]:
    """First every visible device, then each device whose status changes. Ends with FORBIDDEN
    once the caller may no longer see a device it was shown (a grant revoked, a membership
    removed); devices it may newly see join the stream."""
    project_id, visible = await viewers(db, principal, project)

    async def recheck() -> None:
        nonlocal visible
        now = (await viewers(db, principal, project))[1]
        if narrowed(visible, now):
            raise Forbidden("access to devices this subscription showed was withdrawn")
        visible = now

    seen: dict[DeviceKey, DeviceStatus] = {}
    version = 0
    guard = Guard(principal, poll_seconds, recheck)
    async with feeds.watch(project) as feed:
        with guard.watching(hub, project_id):
            while True:
                found = await guard.wait(feed.next(version))
                if found is None:
                    continue
                version, snapshot = found
                for key, device in snapshot.items():
                    if visible is not None and device.owner not in visible:
                        continue
                    if seen.get(key) is not device.status:
                        seen[key] = device.status
                        yield device


async def sync_status_changes(
    feeds: StatusFeeds,
    db: Database,
    hub: Hub,
    principal: Principal,
    project: str,
    user: str | None,
    options: ReportOptions,
    support_contact: str | None,
    poll_seconds: float,
) -> AsyncIterator[SyncStatusReport]:
    """First the user's report (omitted: the caller's), then each time it changes. The lag alone
    ticking on does not count as a change: clients tell it from ``lastSync``. Ends with
    FORBIDDEN once the caller may no longer see that user's data."""
    project_id, owner = await report_owner(db, principal, project, user)

    async def recheck() -> None:
        await report_owner(db, principal, project, owner)

    shown: SyncStatusReport | None = None
    version = 0
    guard = Guard(principal, poll_seconds, recheck)
    async with feeds.watch(project) as feed:
        with (
            feed.watch_user(owner, listing=options.check_conflicts),
            guard.watching(hub, project_id),
        ):
            while True:
                found = await guard.wait(feed.next_report(version, owner, options, support_contact))
                if found is None:
                    continue
                version, report = found
                if shown is None or replace(report, sync_lag=None) != replace(shown, sync_lag=None):
                    shown = report
                    yield report
