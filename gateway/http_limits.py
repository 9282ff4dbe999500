"""Transport limits at the ASGI level: per-caller rate limits, request body size and read time.

Each refusal is a GraphQL error document (``{"errors": [{"message", "extensions": {"code":
"LIMIT_EXCEEDED", "limit": ...}}]}``) and happens before the request reaches the application,
so a refused request changes nothing. What uvicorn itself must enforce (request heads, open
connections, WebSocket messages) is in ``gateway/transport.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth.tokens import TokenService, bearer_token
from gateway.errors import LimitExceeded, Unauthenticated
from gateway.settings import Settings

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
#: Probes answer load balancers and orchestrators, which must never be told to back off.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})


def error_document(message: str, code: str, **extensions: Any) -> bytes:
    """A GraphQL response without data: the body of every transport refusal."""
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


def limit_document(message: str, limit: float, **extensions: Any) -> bytes:
    return error_document(message, LimitExceeded.code, limit=limit, **extensions)


async def send_refusal(
    send: Send,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    close: bool = False,
    media_type: str = JSON_MEDIA_TYPE,
) -> None:
    """Answer with ``body``; ``close`` ends the connection too (the client is still sending a
    body nobody will read, or is too slow to keep)."""
    raw = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RateLimiter:
    """Token buckets, one per caller, in this process's memory: each replica limits on its
    own. A bucket holds ``burst`` requests and refills at ``rate`` per second. A bucket that
    has filled up again is the same as a new one, so idle callers are forgotten."""

    _SWEEP_SECONDS = 10.0

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._swept = clock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(settings.rate_limit_per_second, settings.rate_limit_burst)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """Spend one request of ``key``'s bucket: 0 when allowed, else the seconds until the
        next one is."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if now - self._swept > self._SWEEP_SECONDS:
            self._sweep(now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def refusal(self, wait: float) -> tuple[bytes, dict[str, str]]:
        """The 429 body and headers for a caller who must wait ``wait`` seconds."""
        error = self.error(wait)
        body = error_document(error["message"], **error["extensions"])
        return body, {"Retry-After": str(error["extensions"]["retryAfterSeconds"])}

    def error(self, wait: float, what: str = "requests") -> dict[str, Any]:
        """The GraphQL error for a caller who must wait ``wait`` seconds."""
        retry_after = max(1, math.ceil(wait))
        message = (
            f"too many {what}: at most {self.rate:g} per second (bursts of {self.burst}); "
            f"retry after {retry_after} s"
        )
        extensions = {
            "code": LimitExceeded.code,
            "limit": self.rate,
            "burst": self.burst,
            "retryAfterSeconds": retry_after,
        }
        return {"message": message, "extensions": extensions}

    def _sweep(self, now: float) -> None:
        self._swept = now
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def caller_key(tokens: TokenService, headers: Headers, scope: Scope) -> str:
    """Whom a request counts against: the user of a valid token (``sub``), else the client's
    address (behind a proxy, the one uvicorn takes from ``X-Forwarded-For`` of trusted
    proxies). A bad token counts as anonymous, so made-up tokens get no buckets of their own."""
    token = bearer_token(headers.get("authorization")) or bearer_token(headers.get("x-auth-token"))
    if token is not None:
        try:
            return user_key(tokens.verify(token).user_id)
        except Unauthenticated:
            pass
    return address_key(scope)


def user_key(user_id: str) -> str:
    return f"user:{user_id}"


def address_key(scope: Scope) -> str:
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class TransportLimits:
    """ASGI middleware for HTTP requests: the caller's rate limit (429 with ``Retry-After``),
    then the body, read in full before the application runs: more than ``max_body_bytes``
    (by ``Content-Length`` up front, or counted as a chunked body streams in) is 413, a body
    not complete within ``body_timeout_seconds`` of the request's head (a client sending one
    byte a second) is 408. Both close the connection. WebSockets pass: their operations are
    rate-limited by the GraphQL view, per connection's user."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService,
        limiter: RateLimiter,
        max_body_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.limiter.enabled and scope["path"] not in UNLIMITED_PATHS:
            wait = self.limiter.take(caller_key(self.tokens, headers, scope))
            if wait > 0:
                body, retry = self.limiter.refusal(wait)
                await send_refusal(send, 429, body, retry)
                return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            # Refused before reading a byte of it (and before any ``100 Continue``).
            await send_refusal(send, 413, self._too_large(), close=True)
            return
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                body = await self._read_body(receive)
        except _BodyTooLarge:
            await send_refusal(send, 413, self._too_large(), close=True)
            return
        except TimeoutError:
            message = (
                f"the request body did not arrive within {self.body_timeout_seconds:g} seconds"
            )
            await send_refusal(
                send, 408, limit_document(message, self.body_timeout_seconds), close=True
            )
            return
        except _ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> bytes:
        return limit_document(
            f"the request body is larger than {self.max_body_bytes} bytes", self.max_body_bytes
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the server says next (a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
