"""What browsers get told: security headers on every response, and which origins may call.

The gateway authenticates with bearer tokens, never cookies, so a browser holds no ambient
credentials for it: CORS decides which sites' scripts may *read* answers (and send
``Authorization`` at all, which needs a preflight). WebSockets are not covered by CORS, so the
GraphQL view checks a browser's ``Origin`` on upgrades against the same ``OriginPolicy``.
Clients that send no ``Origin`` (device apps, curl, server-side code) are not browsers and
always pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import Environment, Settings

#: Development without GATEWAY_CORS_ORIGINS: pages served from this machine, any port.
LOCALHOST_ORIGINS = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"

CORS_METHODS = ("GET", "POST")
CORS_HEADERS = ("Authorization", "Content-Type", "X-Auth-Token")

#: For everything but pages that set their own (GraphiQL): JSON and text need no resources, and
#: nothing of the gateway may be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CSP,
}


@dataclass(frozen=True)
class OriginPolicy:
    """Which browser origins may call the gateway (``GATEWAY_CORS_ORIGINS``), over HTTP and
    WebSockets alike."""

    origins: frozenset[str]
    pattern: str | None = None  # a regular expression an origin must match in full
    credentials: bool = False  # GATEWAY_CORS_ALLOW_CREDENTIALS

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        credentials = settings.cors_allow_credentials
        if settings.cors_origins is not None:
            return cls(frozenset(settings.cors_origins), credentials=credentials)
        if settings.environment is Environment.DEVELOPMENT:
            return cls(frozenset(), LOCALHOST_ORIGINS, credentials)
        return cls(frozenset(), credentials=credentials)

    @property
    def allows_all(self) -> bool:
        return "*" in self.origins

    def allows(self, origin: str) -> bool:
        return (
            self.allows_all
            or origin in self.origins
            or (self.pattern is not None and re.fullmatch(self.pattern, origin) is not None)
        )


def cors(app: ASGIApp, policy: OriginPolicy) -> ASGIApp:
    """Preflights answered for allowed origins only; no origin is ever reflected otherwise."""
    return CORSMiddleware(
        app,
        allow_origins=tuple(policy.origins),
        allow_origin_regex=policy.pattern,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        allow_credentials=policy.credentials,
    )


class SecurityHeaders:
    """Adds the usual headers to every HTTP response, refused WebSocket upgrades included.

    A header the response sets itself is kept: a page that needs more than ``API_CSP``
    (GraphiQL) brings its own ``Content-Security-Policy``. ``Strict-Transport-Security`` goes
    only on HTTPS responses in production: browsers ignore it over plain HTTP, and on a
    developer's localhost it would pin every local server to HTTPS. Behind a TLS-terminating
    proxy, uvicorn takes the scheme from ``X-Forwarded-Proto`` of trusted proxies
    (``FORWARDED_ALLOW_IPS``)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hsts: str | None = None
        if settings.environment is Environment.PRODUCTION and settings.hsts_seconds > 0:
            self.hsts = f"max-age={settings.hsts_seconds}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") in ("https", "wss")

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)  # a response's own value wins
                if secure and self.hsts is not None:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
