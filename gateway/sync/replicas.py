"""Replicas: a heartbeat per running gateway, and the live runs of those that died.

Each ``gateway serve`` process registers itself in ``replicas`` when it starts and beats there
every ``GATEWAY_REPLICA_BEAT_SECONDS``. A live subscription's sync run records the replica that
streams it (``hold_run``). When a replica stops beating for ``GATEWAY_REPLICA_LOST_SECONDS``
(killed with ``kill -9``, its node lost), any other replica notices at its next beat and fails
that replica's WORKING live runs with ``REPLICA_LOST``, rather than leaving them WORKING until
the run timeout; the conditional UPDATE fails each run once, however many replicas look. A
replica that drains deletes its own row after its live runs completed.

The beats and the check use each replica's clock (as every timestamp of the gateway does): the
lost interval must be well above the clock skew between replicas and the beat interval.

A replica wrongly declared lost (paused longer than the lost interval) registers again at its
next beat; its live runs stay FAILED, and its streams go on without a run (as after a run
timeout).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.db.dialect import in_values, insert
from gateway.db.models import Replica, SyncRun
from gateway.db.types import utcnow
from gateway.sync.events import Changes, Events
from gateway.sync.runs.loading import load_runs
from gateway.sync.runs.model import SyncRunStatus
from gateway.tasks import cancelled

logger = logging.getLogger("gateway")

REPLICA_LOST = "REPLICA_LOST"  # a live run's error code when its replica died


def new_replica_id() -> str:
    """Unique per process, and telling an operator where it ran."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


async def hold_run(session: AsyncSession, run_id: int, replica_id: str) -> None:
    """Record that ``replica_id`` streams the live run ``run_id``."""
    await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(replica_id=replica_id))


async def fail_lost_replicas(
    db: Database, me: str, now: datetime, lost_seconds: float, events: Events
) -> list[str]:
    """Fail the WORKING runs of the replicas (other than ``me``) not beating since
    ``lost_seconds`` before ``now``, and forget those replicas; their ids."""
    cutoff = now - timedelta(seconds=lost_seconds)
    silent = (Replica.beat_at < cutoff, Replica.id != me)  # type: ignore[operator]
    async with db.session() as session:  # an idle look first, without the write lock
        lost = list(await session.scalars(select(Replica.id).where(*silent)))
    if not lost:
        return []
    async with db.transaction() as session:
        failed = await session.scalars(
            update(SyncRun)
            .where(
                in_values(session, SyncRun.replica_id, lost),
                SyncRun.status == SyncRunStatus.WORKING.value,
            )
            .values(
                status=SyncRunStatus.FAILED.value,
                completed_at=now,
                updated_at=now,
                error_code=REPLICA_LOST,
                error_message="The gateway replica streaming this live subscription stopped "
                f"(no heartbeat for {lost_seconds:g} seconds); the device reconnects to "
                "another one.",
            )
            .returning(SyncRun.id)
            .execution_options(synchronize_session=False)
        )
        changes = Changes(runs=await load_runs(session, list(failed)))
        await session.execute(delete(Replica).where(in_values(session, Replica.id, lost), *silent))
        await events.staged(session, changes)
    await events.committed(changes)
    logger.warning(
        "replicas stopped beating: %s; %d of their live runs failed (%s)",
        ", ".join(lost),
        len(changes.runs),
        REPLICA_LOST,
    )
    return lost


class ReplicaHeartbeat:
    """This replica's row in ``replicas``, beaten every ``beat_seconds``; each beat also looks
    for replicas that stopped beating."""

    def __init__(
        self,
        db: Database,
        events: Events,
        replica_id: str,
        *,
        beat_seconds: float,
        lost_seconds: float,
    ) -> None:
        self._db, self._events, self.replica_id = db, events, replica_id
        self._beat, self._lost = beat_seconds, lost_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Not a reason to refuse to start (an unmigrated or unreachable database makes the
        # replica unready instead): the next beats try again.
        await self._beat_once()
        self._task = asyncio.create_task(self._beat_forever(), name="replica-heartbeat")

    async def stop(self) -> None:
        """Stop beating and leave (best effort: a replica that cannot say goodbye is found
        lost later, its live runs already ended)."""
        await cancelled(self._task)
        self._task = None
        try:
            async with self._db.transaction() as session:
                await session.execute(delete(Replica).where(Replica.id == self.replica_id))
        except Exception:
            logger.warning("could not unregister replica %s", self.replica_id, exc_info=True)

    async def beat(self) -> None:
        now = utcnow()
        async with self._db.transaction() as session:
            found = await session.execute(
                update(Replica).where(Replica.id == self.replica_id).values(beat_at=now)
            )
            if not found.rowcount:  # type: ignore[attr-defined]
                # New, or declared lost by another replica meanwhile: (again) here.
                await session.execute(
                    insert(session, Replica)
                    .values(id=self.replica_id, started_at=now, beat_at=now)
                    .on_conflict_do_nothing(index_elements=["id"])
                )
        await fail_lost_replicas(self._db, self.replica_id, now, self._lost, self._events)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._beat)
            await self._beat_once()

    async def _beat_once(self) -> None:
        try:
            await self.beat()
        except Exception:
            logger.warning("replica %s could not beat", self.replica_id, exc_info=True)
