"""Telling live readers that actions committed.

SQLite (one process): wake the local hub directly. PostgreSQL (any number of replicas): each
committed batch sends one NOTIFY; every replica holds one LISTEN connection (not one per
subscriber) and wakes its own hub. When that connection drops, the replica reconnects and wakes
every subscriber, since a wake-up may have been lost meanwhile.

A write of actions sends its NOTIFYs inside its own transaction (``stage``: one statement,
delivered by the commit, gone with a rollback); other announcements are sent after their
commit, each in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Collection
from typing import Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.live.hub import Hub
from gateway.sync.events import Changes
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.live")

CHANNEL = "gateway_log"
LISTENER_NAME = "sync-gateway-listener"  # the LISTEN connection's name in pg_stat_activity


class Announcer(Protocol):
    hub: Hub

    async def announce(self, project_id: int, user: str, table_ids: Collection[int]) -> None: ...

    async def announce_status(self, project: str) -> None: ...

    async def announce_runs(self, project_id: int, run_ids: Collection[int]) -> None: ...

    async def announce_access(self, project_id: int) -> None: ...

    async def stage(self, session: AsyncSession, changes: Changes) -> bool:
        """Announce ``changes`` inside the session's transaction, with its commit; False if
        they must be announced after the commit instead."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalAnnouncer:
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

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def encode(project_id: int, user: str, table_ids: Collection[int]) -> str:
    # The user id goes last: it is the only part that may contain the separator.
    return f"{project_id}:{','.join(map(str, sorted(table_ids)))}:{user}"


_STATUS = "status:"  # a status payload: the project code follows
_RUNS = "runs:"  # sync runs changed: "runs:<project id>:<run id>,<run id>..."
_RUNS_PER_NOTIFY = 500  # keeps a payload far below NOTIFY's 8000 bytes
_ACCESS = "access:"  # access changed in a project: "access:<project id>"


def encode_runs(project_id: int, run_ids: Collection[int]) -> list[str]:
    ids = sorted(run_ids)
    return [
        f"{_RUNS}{project_id}:{','.join(map(str, ids[i : i + _RUNS_PER_NOTIFY]))}"
        for i in range(0, len(ids), _RUNS_PER_NOTIFY)
    ]


def decode_runs(payload: str) -> tuple[int, list[int]]:
    project, ids = payload.removeprefix(_RUNS).split(":", 1)
    return int(project), [int(i) for i in ids.split(",") if i]


def payloads(changes: Changes) -> list[str]:
    """The NOTIFY payloads of ``changes``, the same as announced one by one."""
    found = [encode(w.project_id, w.user, w.table_ids) for w in changes.written]
    runs: dict[int, set[int]] = defaultdict(set)
    for run in changes.runs:
        runs[run.project_id].add(run.id)
    found += [payload for project, ids in runs.items() for payload in encode_runs(project, ids)]
    return found + [_STATUS + project for project in changes.statuses]


def decode(payload: str) -> tuple[int, str, list[int]]:
    project, tables, user = payload.split(":", 2)
    return int(project), user, [int(t) for t in tables.split(",") if t]


_NOTIFY_ALL = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)


class PostgresAnnouncer:
    def __init__(
        self,
        db: Database,
        hub: Hub,
        *,
        health_check_seconds: float = 5.0,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.hub = hub
        self._db = db
        self._dsn = db.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._health_check_seconds = health_check_seconds
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def announce(self, project_id: int, user: str, table_ids: Collection[int]) -> None:
        await self._notify(encode(project_id, user, table_ids))

    async def announce_status(self, project: str) -> None:
        await self._notify(_STATUS + project)

    async def announce_runs(self, project_id: int, run_ids: Collection[int]) -> None:
        for payload in encode_runs(project_id, run_ids):
            await self._notify(payload)

    async def announce_access(self, project_id: int) -> None:
        # This replica's subscriptions at once, whatever becomes of the notification.
        self.hub.wake_access(project_id)
        await self._notify(f"{_ACCESS}{project_id}")

    async def stage(self, session: AsyncSession, changes: Changes) -> bool:
        # One round trip for them all; the listeners get them once the transaction commits.
        await session.execute(_NOTIFY_ALL, {"channel": CHANNEL, "payloads": payloads(changes)})
        return True

    async def _notify(self, payload: str) -> None:
        async with self._db.engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": payload},
            )
            await conn.commit()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="gateway-listen")

    async def stop(self) -> None:
        await cancelled(self._task)

    async def _watch(self, conn: asyncpg.Connection, closed: asyncio.Event) -> None:
        """Return (by raising) once the connection is gone: told by asyncpg, or found by a
        periodic query when the network silently dropped it."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), self._health_check_seconds)
            if closed.is_set():
                raise ConnectionResetError("the LISTEN connection was closed")
            await asyncio.wait_for(conn.execute("SELECT 1"), self._health_check_seconds)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(_STATUS):
            self.hub.wake_status(payload.removeprefix(_STATUS))
            return
        try:
            if payload.startswith(_RUNS):
                self.hub.wake_runs(*decode_runs(payload))
                return
            if payload.startswith(_ACCESS):
                self.hub.wake_access(int(payload.removeprefix(_ACCESS)))
                return
            project_id, user, table_ids = decode(payload)
        except ValueError:
            logger.warning("ignoring a malformed notification: %r", payload)
            return
        self.hub.wake(project_id, user, table_ids)

    async def _listen_forever(self) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn, event=closed: event.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                backoff = 0.1
                # Whatever committed while no connection listened has not woken anyone.
                self.hub.wake_all()
                await self._watch(conn, closed)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                if self.listening.is_set():
                    logger.warning("LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)


def announcer_for(db: Database, hub: Hub) -> Announcer:
    return PostgresAnnouncer(db, hub) if db.backend == "postgresql" else LocalAnnouncer(hub)
