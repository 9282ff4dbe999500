"""Transport limits uvicorn must enforce itself, before a request reaches the application.

uvicorn arms no timer until a first response is sent (``timeout_keep_alive`` only covers idle
connections between requests), httptools puts no bound on a request head, and its
``limit_concurrency`` answers in plain text and lets WebSocket upgrades through uncounted. So
the gateway runs uvicorn's own HTTP protocol with a guard mixed in:

- a request head must be complete ``header_timeout_seconds`` after its first byte (or after
  the connection opened): otherwise 408 and the connection is closed (slowloris);
- a head larger than ``max_header_bytes`` is 431 and closed;
- beyond ``max_connections`` open connections (HTTP and WebSocket alike), a request or an
  upgrade is answered 503 and closed.

Each answer is a GraphQL error document with ``extensions.code: LIMIT_EXCEEDED``. After a
refusal the connection lingers (like nginx's ``lingering_close``): what the client still sends is
read and dropped for up to ``LINGER_SECONDS`` or ``LINGER_BYTES``, so closing with unread data
does not reset the connection and destroy the answer before the client has read it.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from gateway.http_limits import JSON_MEDIA_TYPE, limit_document, send_refusal
from gateway.http_security import SECURITY_HEADERS
from gateway.settings import Settings

LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 2048

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout_seconds=settings.header_timeout_seconds,
            max_header_bytes=settings.max_header_bytes,
            max_connections=settings.max_connections,
        )


def raw_refusal(status: int, body: bytes) -> bytes:
    """A whole HTTP response, for the protocol to write when no request cycle exists."""
    headers = {
        "content-type": JSON_MEDIA_TYPE,
        "content-length": str(len(body)),
        "connection": "close",
        **SECURITY_HEADERS,
    }
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()
    )
    return head.encode("latin-1") + b"\r\n" + body


def over_capacity_app(limit: int) -> Any:
    body = limit_document(f"the server holds at most {limit} connections: retry shortly", limit)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"Retry-After": "1", **SECURITY_HEADERS}
        await send_refusal(send, 503, body, headers, close=True)

    return app


class ConnectionGuard:
    """Mixed into uvicorn's httptools or h11 protocol (both keep ``self.app``, ``self.cycle``,
    ``self.connections`` and ``self.tasks``; see ``guarded_http_protocol``)."""

    app: Any
    cycle: Any
    connections: set[Any]
    tasks: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    limit_concurrency: int | None

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self._limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self._gateway_app = self.app
        self._refusal_app = over_capacity_app(self._limits.max_connections)
        self.limit_concurrency = None  # counted here instead, with a JSON answer
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._over_capacity = False
        self._upgraded = False
        self._lingering: int | None = None  # bytes dropped since a refusal

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def eof_received(self) -> bool | None:
        if self._lingering is not None:
            self.transport.close()
            return None
        return super().eof_received()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering += len(data)
            if self._lingering > LINGER_BYTES:
                self.transport.close()
            return
        awaiting = self._awaiting_head()
        if awaiting:
            if self._head_bytes == 0:  # a new request: decided once, upgrades included
                self._over_capacity = (
                    len(self.connections) > self._limits.max_connections
                    or len(self.tasks) >= self._limits.max_connections
                )
                self.app = self._refusal_app if self._over_capacity else self._gateway_app
            self._arm_head_timer()
            self._head_bytes += len(data)
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if not awaiting:
            return
        if self.cycle is not cycle or self._upgraded:
            self._disarm_head_timer()
            self._head_bytes = 0
        elif self._head_bytes > self._limits.max_header_bytes:
            limit = self._limits.max_header_bytes
            message = f"the request head is larger than {limit} bytes"
            self._refuse(431, limit_document(message, limit))

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._upgraded = True
        self._disarm_head_timer()
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def _should_upgrade(self) -> bool:
        return not self._over_capacity and super()._should_upgrade()  # type: ignore[misc]

    def _unsupported_upgrade_warning(self) -> None:
        if not self._over_capacity:  # a refused upgrade is not an unsupported one
            super()._unsupported_upgrade_warning()  # type: ignore[misc]

    def _awaiting_head(self) -> bool:
        return not self._upgraded and (self.cycle is None or self.cycle.response_complete)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self._limits.header_timeout_seconds, self._head_timed_out
            )

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            seconds = self._limits.header_timeout_seconds
            message = f"the request head did not arrive within {seconds:g} seconds"
            self._refuse(408, limit_document(message, seconds))

    def _refuse(self, status: int, body: bytes) -> None:
        self._disarm_head_timer()
        if self.transport.is_closing() or self._lingering is not None:
            return
        self._lingering = 0
        self.transport.write(raw_refusal(status, body))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class GatewayConfig(uvicorn.Config):
    """uvicorn's configuration, carrying the limits the guarded protocol reads."""

    def __init__(self, app: Any, *, connection_limits: ConnectionLimits, **options: Any) -> None:
        self.connection_limits = connection_limits
        super().__init__(app, http=guarded_http_protocol(), **options)


@functools.cache
def guarded_http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's default HTTP protocol (httptools when installed, else h11), guarded."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return type(f"Guarded{base.__name__}", (ConnectionGuard, base), {})
