"""What the domain announces after a transaction committed: the one way commits reach the
live feeds, push and other replicas.

Every domain operation that commits a change takes an ``events`` argument and calls it itself,
after the commit, so no caller (a resolver, the sweeper, a test) can forget one. The running
gateway's implementation is ``gateway.services.Services``: it wakes this replica's subscribers,
tells the other replicas through the bus and queues push notifications. Announcing is best
effort and never raises: the change is committed, and a lost announcement only delays
subscribers until their next periodic re-read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.sync.runs import RunInfo


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


class NoEvents:
    """Announces nothing: for tools and tests that run the domain without live feeds."""

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


NO_EVENTS: Events = NoEvents()
