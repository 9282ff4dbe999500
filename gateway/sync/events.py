"""What the domain announces after a transaction committed: the one way commits reach the
live feeds, push and other replicas.

Every domain operation that commits a change takes an ``events`` argument and calls it itself,
so no caller (a resolver, the sweeper, a test) can forget one. It gathers what its transaction
changed in one ``Changes`` and hands them over twice: ``staged`` inside its transaction, where
PostgreSQL's NOTIFY can join it (one message per commit, one statement, sent by the commit
itself, no transaction of its own, gone with a rollback), then ``committed`` after the commit
for whatever could not travel with it (SQLite's in-process wake-ups, the NATS bus, push); by
default ``committed`` calls the methods below.

The running gateway's implementation is ``gateway.services.Services``: it wakes this
replica's subscribers, tells the other replicas through the bus and queues push notifications.
Announcing after a commit is best effort and never raises: the change is committed, and a lost
announcement only delays subscribers until their next periodic re-read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.sync.runs import RunInfo


@dataclass(slots=True)
class Written:
    """New actions of ``user`` in these tables (written by ``device_id``, if any); ``count``:
    how many (for the gateway's metrics)."""

    project_id: int
    user: str
    table_ids: frozenset[int]
    device_id: str | None
    count: int = 0


@dataclass(slots=True)
class Changes:
    """What one transaction changed, announced with its commit (``Events.staged``, then
    ``Events.committed``)."""

    written: list[Written] = field(default_factory=list)
    runs: list[RunInfo] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # project codes
    access: list[int] = field(default_factory=list)  # project ids
    staged: bool = False  # the transaction carries the announcements (PostgreSQL's NOTIFY)


class Events(Protocol):
    async def actions_written(
        self, project_id: int, user: str, table_ids: Collection[int], device_id: str | None
    ) -> None:
        """New actions of ``user`` in these tables (written by ``device_id``, if any)."""

    async def runs_changed(self, runs: Sequence[RunInfo]) -> None:
        """Sync runs were created or changed state."""

    async def status_changed(self, project: str) -> None:
        """Something a project's sync status shows moved: devices, progress, history."""

    async def access_changed(self, project_id: int) -> None:
        """Who may see what in a project changed (a grant, a membership)."""

    async def staged(self, session: AsyncSession, changes: Changes) -> None:
        """Inside the transaction that made ``changes``, just before its commit: announce
        what can be sent with the commit, and set ``changes.staged`` if it all was."""

    async def committed(self, changes: Changes) -> None:
        """After that commit: announce the rest."""


class NoEvents:
    """Announces nothing: for tools and tests that run the domain without live feeds (a
    subclass that records the methods' calls gets a write's ``Changes`` through them)."""

    async def staged(self, session: AsyncSession, changes: Changes) -> None:
        return None

    async def committed(self, changes: Changes) -> None:
        await announce_each(self, changes)

    async def actions_written(
        self, project_id: int, user: str, table_ids: Collection[int], device_id: str | None
    ) -> None:
        return None

    async def runs_changed(self, runs: Sequence[RunInfo]) -> None:
        return None

    async def status_changed(self, project: str) -> None:
        return None

    async def access_changed(self, project_id: int) -> None:
        return None


async def announce_each(events: Events, changes: Changes) -> None:
    """``changes`` through the methods that announce one kind of change each."""
    for w in changes.written:
        await events.actions_written(w.project_id, w.user, w.table_ids, w.device_id)
    if changes.runs:
        await events.runs_changed(changes.runs)
    for project in changes.statuses:
        await events.status_changed(project)
    for project_id in changes.access:
        await events.access_changed(project_id)


NO_EVENTS: Events = NoEvents()
