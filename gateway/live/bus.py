"""The fan-out bus between replicas: PostgreSQL's LISTEN/NOTIFY (``GATEWAY_BUS=postgres``, the
default) or NATS (``GATEWAY_BUS=nats://host:port``).

Either carries only wake-ups (``payloads.py``); the log in the database stays the only source of
data. A message lost on the way (a connection down, a publish that failed) costs the readers it
should have woken a delay, never an action: each project's ``LogWatch`` re-checks the log every
``GATEWAY_LIVE_POLL_SECONDS``, and a listener that (re)connects wakes every watch at once
(``lost``), since it cannot know what it missed.

``publish_failures`` counts the messages that could not be sent (for /metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import Database
from gateway.live.payloads import kind, pack
from gateway.tasks import cancelled

logger = logging.getLogger("gateway.live")

CHANNEL = "gateway_log"
LISTENER_NAME = "sync-gateway-listener"  # the LISTEN connection's name in pg_stat_activity

Deliver = Callable[[str], None]  # a message received
Lost = Callable[[], None]  # messages may have been lost (the listener was down)


class Bus(Protocol):
    publish_failures: int
    echoes: bool  # whether this replica receives its own messages
    listening: asyncio.Event

    async def start(self, deliver: Deliver, lost: Lost) -> None: ...

    async def stop(self) -> None: ...

    async def stage(self, session: AsyncSession, found: list[str]) -> bool:
        """Send ``found`` with the session's transaction (only once it commits, not if it
        rolls back); False if this bus cannot, and they must be published after the commit."""
        ...

    async def publish(self, found: list[str]) -> None:
        """Send ``found`` now (what committed already). Raises when it could not."""
        ...


_NOTIFY_ALL = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)


class PostgresBus:
    """NOTIFY on the channel ``gateway_log``, one LISTEN connection per replica.

    PostgreSQL takes a cluster-wide lock at the commit of a transaction that notified, so a
    commit sends one message (its payloads packed), inside its own transaction when it can
    (``stage``: no transaction of its own, gone with a rollback)."""

    echoes = True

    def __init__(
        self, db: Database, *, health_check_seconds: float = 5.0, max_backoff_seconds: float = 5.0
    ) -> None:
        self._db = db
        self._dsn = db.url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._health_check_seconds = health_check_seconds
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.publish_failures = 0

    async def stage(self, session: AsyncSession, found: list[str]) -> bool:
        if found:
            await session.execute(_NOTIFY_ALL, {"channel": CHANNEL, "payloads": pack(found)})
        return True

    async def publish(self, found: list[str]) -> None:
        if not found:
            return
        try:
            # Autocommit: the statement is its own transaction, without BEGIN and COMMIT.
            async with self._db.lookup() as session:
                await session.execute(_NOTIFY_ALL, {"channel": CHANNEL, "payloads": pack(found)})
        except Exception:
            self.publish_failures += 1
            raise

    async def start(self, deliver: Deliver, lost: Lost) -> None:
        self._task = asyncio.create_task(self._listen_forever(deliver, lost), name="gateway-bus")

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

    async def _listen_forever(self, deliver: Deliver, lost: Lost) -> None:
        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            deliver(payload)

        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
                )
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn, event=closed: event.set())
                await conn.add_listener(CHANNEL, on_notify)
                self.listening.set()
                backoff = 0.1
                lost()  # whatever committed while no connection listened has woken no one
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


async def database_identity(db: Database) -> str:
    """A name for the database that every replica of it computes alike, and that replicas of
    other databases sharing the NATS server do not: NATS subjects are per database."""
    parts: list[str] = [db.backend]
    async with db.lookup() as session:
        if db.backend == "postgresql":
            row = (
                await session.execute(
                    text(
                        "SELECT current_database(), oid FROM pg_database "
                        "WHERE datname = current_database()"
                    )
                )
            ).one()
            parts += [str(row[0]), str(row[1])]
            with contextlib.suppress(Exception):  # needs superuser or pg_monitor rights
                async with session.begin_nested():
                    system = await session.scalar(
                        text("SELECT system_identifier FROM pg_control_system()")
                    )
                parts.append(str(system))
        else:
            parts.append(db.url)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class NatsBus:
    """NATS subjects ``gateway.<database identity>.<kind>`` (actions, runs, status, access).

    NATS is not transactional, so nothing is staged: messages are published after the commit.
    That is safe, and publishing before it would not be: a subscriber woken reads the log from
    its cursor, and a wake-up that arrived before the commit was visible would find nothing new
    and be spent, leaving the action unread until the next poll. Once committed, a message can
    only arrive after what it announces is readable.

    nats-py reconnects by itself (re-subscribing); every reconnect counts as ``lost``. A
    replica does not receive its own messages (``no_echo``): it wakes its own subscribers
    directly, which also keeps them live while NATS is down."""

    echoes = False

    def __init__(
        self,
        url: str,
        db: Database,
        *,
        health_check_seconds: float = 5.0,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._url = url
        self._db = db
        self._health_check_seconds = health_check_seconds
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task[None] | None = None
        self._nc: Any = None  # nats.aio.client.Client, once connected
        self._prefix: str | None = None
        self.listening = asyncio.Event()
        self.publish_failures = 0

    def subject(self, payload: str) -> str:
        return f"{self._prefix}.{kind(payload)}"

    async def stage(self, session: AsyncSession, found: list[str]) -> bool:
        return False  # see the class: published after the commit

    async def publish(self, found: list[str]) -> None:
        failures = 0
        for payload in found:
            try:
                if self._nc is None or self._prefix is None:
                    raise ConnectionError("not connected to NATS yet")
                # Buffered by nats-py (also while it reconnects), sent by its flusher.
                await self._nc.publish(self.subject(payload), payload.encode())
            except Exception:
                failures += 1
        if failures:
            self.publish_failures += failures
            raise ConnectionError(f"{failures} of {len(found)} NATS messages were not published")

    async def start(self, deliver: Deliver, lost: Lost) -> None:
        self._task = asyncio.create_task(self._connect_forever(deliver, lost), name="gateway-bus")

    async def stop(self) -> None:
        await cancelled(self._task)

    async def _connect_forever(self, deliver: Deliver, lost: Lost) -> None:
        import nats

        async def on_message(msg: Any) -> None:
            try:
                deliver(msg.data.decode())
            except UnicodeDecodeError:
                logger.warning("ignoring a bus message that is not text on %s", msg.subject)

        async def on_disconnected() -> None:
            self.listening.clear()
            logger.warning("NATS connection lost; reconnecting")

        async def on_reconnected() -> None:
            self.listening.set()
            lost()  # what was published meanwhile did not reach this replica

        async def on_error(exc: Exception) -> None:
            logger.warning("NATS: %s", exc)

        backoff = 0.1
        while True:
            closed = asyncio.Event()

            async def on_closed(event: asyncio.Event = closed) -> None:
                event.set()

            nc: Any = None
            try:
                if self._prefix is None:
                    self._prefix = f"gateway.{await database_identity(self._db)}"
                nc = await nats.connect(
                    self._url,
                    name="sync-gateway",
                    no_echo=True,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,  # forever: the bus is worth waiting for
                    reconnect_time_wait=1,
                    connect_timeout=max(1, int(self._health_check_seconds)),
                    # A silently dropped connection is found after two unanswered pings.
                    ping_interval=max(1, int(self._health_check_seconds)),
                    max_outstanding_pings=2,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                    error_cb=on_error,
                    closed_cb=on_closed,
                )
                await nc.subscribe(f"{self._prefix}.>", cb=on_message)
                await nc.flush()
                self._nc = nc
                self.listening.set()
                backoff = 0.1
                lost()
                await closed.wait()  # nats-py reconnects by itself; closed: it gave up
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # nats-py raises many kinds; all mean: try again
                logger.warning("could not connect to NATS at %s (%s); retrying", self._url, exc)
            finally:
                self.listening.clear()
                self._nc = None
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(nc.close(), 2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
