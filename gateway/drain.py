"""Graceful drain of a replica on SIGTERM (``gateway serve``).

1. At once: ``/readyz`` answers 503 (``draining``), so the load balancer stops sending new
   clients here; everything is still served meanwhile, since it takes the balancer a probe
   period or two to notice.
2. After ``GATEWAY_DRAIN_GRACE_SECONDS``: every WebSocket closes with 1001 (going away). Each
   subscription ends as when its client leaves: a device's live sync run is COMPLETED, and the
   client reconnects (to another replica) and resumes from the progress it received.
3. uvicorn then stops accepting connections, lets in-flight requests finish, and runs the
   application's shutdown (the heartbeat row goes, see gateway/sync/replicas.py).

A second SIGTERM or SIGINT skips the rest of the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("gateway")

GOING_AWAY = 1001  # RFC 6455: the server is going down


class Drain:
    """Whether the replica drains, and its open WebSockets, to close when the grace ends."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.began: float | None = None  # time.monotonic() of the SIGTERM
        self._sockets: set[_Socket] = set()

    @property
    def draining(self) -> bool:
        return self.began is not None

    def begin(self) -> None:
        if self.began is None:
            self.began = time.monotonic()
            logger.info("draining: not ready; WebSockets close in %gs", self.grace_seconds)

    def grace_over(self) -> bool:
        return self.began is not None and time.monotonic() - self.began >= self.grace_seconds

    async def close_websockets(self) -> None:
        sockets, self._sockets = list(self._sockets), set()
        if sockets:
            logger.info("draining: closing %d WebSockets (1001)", len(sockets))
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)

    def guard(self, app: ASGIApp) -> ASGIApp:
        """``app`` with its WebSockets registered here, to be closed when the grace ends."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            socket = _Socket(receive, send)
            self._sockets.add(socket)
            try:
                await app(scope, socket.receive, socket.send)
            finally:
                self._sockets.discard(socket)

        return guarded


class _Socket:
    """One WebSocket's ASGI channels, which the drain can close from outside: it sends the
    close frame, then tells the application the client went away (so that it ends as on any
    disconnect), and drops whatever the application still sends."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        self._accepted = False
        self._closed = False
        self._gone = asyncio.Event()

    async def receive(self) -> Message:
        if self._gone.is_set():
            return {"type": "websocket.disconnect", "code": GOING_AWAY}
        incoming = asyncio.ensure_future(self._receive())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({incoming, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if incoming.done():
            return incoming.result()
        incoming.cancel()
        return {"type": "websocket.disconnect", "code": GOING_AWAY}

    async def send(self, message: Message) -> None:
        if self._closed:
            return  # closed by the drain: the client is told nothing more
        if message["type"] == "websocket.accept":
            self._accepted = True
        elif message["type"] == "websocket.close":
            self._closed = True
        await self._send(message)

    async def close(self) -> None:
        if not self._closed and self._accepted:
            self._closed = True
            await self._send({"type": "websocket.close", "code": GOING_AWAY, "reason": ""})
        self._gone.set()


class DrainingServer(uvicorn.Server):
    """uvicorn, draining on the first SIGTERM instead of stopping at once."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain.draining or self.drain.grace_seconds == 0:
            self.drain.begin()
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self.drain.begin()

    async def on_tick(self, counter: int) -> bool:
        if self.drain.grace_over() and not self.should_exit:
            await self.drain.close_websockets()
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, *args: Any, **kwargs: Any) -> None:
        # Also when stopped otherwise (a second signal, no grace): close with 1001, not 1012.
        await self.drain.close_websockets()
        await super().shutdown(*args, **kwargs)
