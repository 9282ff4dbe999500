"""Telling live readers that something committed.

SQLite (one process): wake the local hub directly. PostgreSQL (any number of replicas): each
commit sends one message on the bus (``bus.py``: NOTIFY by default, or NATS); every replica
holds one listening connection (not one per subscriber) and wakes its own hub through a
``Coalescer``. When that connection drops, the replica reconnects and wakes every project's
watch, since a wake-up may have been lost meanwhile.

A write of actions sends its message inside its own transaction when the bus can (``stage``:
NOTIFY, one statement, delivered by the commit, gone with a rollback); otherwise, and for the
other announcements, the message is published once the commit is done.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.live.bus import CHANNEL, LISTENER_NAME, Bus, NatsBus, PostgresBus
from gateway.live.coalesce import Coalescer
from gateway.live.hub import Hub
from gateway.live.payloads import encode, encode_access, encode_runs, encode_status, payloads
from gateway.sync.events import Changes

__all__ = ["CHANNEL", "LISTENER_NAME", "Announcer", "BusAnnouncer", "LocalAnnouncer"]


class Announcer(Protocol):
    hub: Hub

    @property
    def publish_failures(self) -> int:
        """Messages the bus could not send (for /metrics): each costs its readers a delay
        (up to GATEWAY_LIVE_POLL_SECONDS), never data."""
        ...

    async def announce(self, project_id: int, user: str, table_ids: Collection[int]) -> None: ...

    async def announce_status(self, project: str) -> None: ...

    async def announce_runs(self, project_id: int, run_ids: Collection[int]) -> None: ...

    async def announce_access(self, project_id: int) -> None: ...

    async def stage(self, session: AsyncSession, changes: Changes) -> bool:
        """Announce ``changes`` inside the session's transaction, with its commit; False if
        they must be announced after the commit instead (``publish``)."""
        ...

    async def publish(self, changes: Changes) -> None:
        """Announce what one commit changed, once it is committed: one message."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalAnnouncer:
    publish_failures = 0  # nothing to send: the hub is in this process

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def announce(self, project_id: int, user: str, table_ids: Collection[int]) -> None:
        self.hub.wake(project_id, user, table_ids)

    async def announce_status(self, project: str) -> None:
        self.hub.wake_status(project)

    async def announce_runs(self, project_id: int, run_ids: Collection[int]) -> None:
        self.hub.wake_runs(project_id, run_ids)

    async def announce_access(self, project_id: int) -> None:
        self.hub.wake_access(project_id)

    async def stage(self, session: AsyncSession, changes: Changes) -> bool:
        return False  # the hub is woken once the commit is done

    async def publish(self, changes: Changes) -> None:
        for w in changes.written:
            self.hub.wake(w.project_id, w.user, w.table_ids)
        for run in changes.runs:
            self.hub.wake_runs(run.project_id, [run.id])
        for project in changes.statuses:
            self.hub.wake_status(project)
        for project_id in changes.access:
            self.hub.wake_access(project_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class BusAnnouncer:
    """Announcements through a ``Bus``, received (coalesced) into this replica's hub."""

    def __init__(self, hub: Hub, bus: Bus, coalesce_seconds: float = 0.0) -> None:
        self.hub = hub
        self.bus = bus
        self.coalescer = Coalescer(hub, coalesce_seconds)

    @property
    def publish_failures(self) -> int:
        """Messages the bus could not send (each costs its readers a delay, not data)."""
        return self.bus.publish_failures

    async def _send(self, found: list[str]) -> None:
        if not self.bus.echoes:
            for payload in found:  # this replica's own subscribers, whatever the bus does
                self.coalescer.deliver(payload)
        await self.bus.publish(found)

    async def announce(self, project_id: int, user: str, table_ids: Collection[int]) -> None:
        await self._send([encode(project_id, user, table_ids)])

    async def announce_status(self, project: str) -> None:
        await self._send([encode_status(project)])

    async def announce_runs(self, project_id: int, run_ids: Collection[int]) -> None:
        await self._send(encode_runs(project_id, run_ids))

    async def announce_access(self, project_id: int) -> None:
        # This replica's subscriptions at once, whatever becomes of the message.
        self.hub.wake_access(project_id)
        await self.bus.publish([encode_access(project_id)])

    async def stage(self, session: AsyncSession, changes: Changes) -> bool:
        return await self.bus.stage(session, payloads(changes))

    async def publish(self, changes: Changes) -> None:
        await self._send(payloads(changes))

    async def start(self) -> None:
        await self.bus.start(self.coalescer.deliver, self.hub.wake_all)

    async def stop(self) -> None:
        await self.bus.stop()
        self.coalescer.close()


def announcer_for(
    db: Database, hub: Hub, bus: str = "postgres", coalesce_seconds: float = 0.0
) -> Announcer:
    """SQLite runs in one process: its hub is woken directly, whatever ``bus`` says."""
    if db.backend != "postgresql":
        return LocalAnnouncer(hub)
    if bus.startswith(("nats://", "tls://")):
        return BusAnnouncer(hub, NatsBus(bus, db), coalesce_seconds)
    return BusAnnouncer(hub, PostgresBus(db), coalesce_seconds)
