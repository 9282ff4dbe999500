"""The ASGI application: GraphQL (HTTP and WebSocket) at /graphql, health probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from gateway.dashboard import dashboard_routes
from gateway.db.migrate import current_revision, head_revision, upgrade
from gateway.drain import Drain
from gateway.graphql.persisted import PersistedQueries
from gateway.graphql.schema import build_schema
from gateway.graphql.view import IDE_ASSETS_DIR, IDE_ASSETS_PATH
from gateway.http_limits import RateLimiter, TransportLimits
from gateway.http_security import OriginPolicy, SecurityHeaders, cors
from gateway.observability.middleware import Observe
from gateway.observability.operations import ObservedGraphQL
from gateway.observability.scrape import metrics_routes
from gateway.rest import ADAPTERS
from gateway.services import Services
from gateway.settings import Settings
from gateway.sync.horizon import oldest_transaction

READINESS_TIMEOUT_SECONDS = 3.0
logger = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    settings.check_can_serve()
    services = Services.create(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            if settings.migrate_on_start:
                await upgrade(services.db)
            await services.start()
            try:
                yield
            finally:
                await services.stop()
        finally:
            await services.db.dispose()

    origins = OriginPolicy.from_settings(settings)
    # One limiter for HTTP requests and WebSocket operations: a caller's budget is shared.
    limiter = RateLimiter.from_settings(settings)
    graphql = ObservedGraphQL(
        build_schema(settings),
        graphiql=settings.graphiql_enabled,
        origins=origins,
        connection_init_timeout_seconds=settings.ws_connection_init_timeout_seconds,
        rate_limiter=limiter,
        max_query_tokens=settings.max_query_tokens,
        persisted=PersistedQueries.from_settings(settings),
    )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.graphiql_enabled:
        routes += [
            Route("/", lambda _: RedirectResponse("/graphql")),
            Mount(IDE_ASSETS_PATH, StaticFiles(directory=IDE_ASSETS_DIR)),
        ]
    if settings.dashboard:
        routes += dashboard_routes()
    if settings.metrics:
        routes += metrics_routes()
    routes += [route for adapter in ADAPTERS for route in adapter.ROUTES]  # the seeds' REST paths
    app = GatewayApp(settings, origins, routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.rate_limiter = limiter
    app.state.drain = Drain(settings.drain_grace_seconds)  # begun by SIGTERM (gateway serve)
    return app


class GatewayApp(Starlette):
    """Starlette with the browser-facing layers outside its own error handling, so that even
    its 500 answers carry the security headers (and CORS headers a frontend can read), and
    the transport limits inside them, so that a 429 or 413 carries them too."""

    def __init__(self, settings: Settings, origins: OriginPolicy, **kwargs: Any) -> None:
        self.settings = settings
        self.origins = origins
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        limits = TransportLimits(
            super().build_middleware_stack(),
            tokens=self.state.services.tokens,
            limiter=self.state.rate_limiter,
            max_body_bytes=self.settings.max_body_bytes,
            body_timeout_seconds=self.settings.body_timeout_seconds,
        )
        secured = SecurityHeaders(cors(limits, self.origins), self.settings)
        # Outermost: the request id and the access log cover every answer, refusals included
        # (a draining replica's too).
        return Observe(self.state.drain.guard(secured), self.state.services.metrics)


async def healthz(_: Request) -> Response:
    """The process is alive (says nothing about the database)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready to serve: the database answers and its schema is the one this code needs. On
    PostgreSQL, ``oldestTransaction`` names the transaction of the gateway's database that has
    held readers back the longest, if one is open; it never changes the status code."""
    services: Services = request.app.state.services
    if request.app.state.drain.draining:  # shutting down: send new clients elsewhere
        return JSONResponse({"status": "draining"}, status_code=503)
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            revision = await current_revision(services.db)
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    head = head_revision()
    if revision != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": f"database schema is at {revision}, this gateway needs {head}: "
                "run 'gateway migrate'",
            },
            status_code=503,
        )
    body: dict[str, Any] = {"status": "ready", "schemaRevision": revision}
    oldest = await _oldest_transaction(services)
    if oldest is not None:
        body["oldestTransaction"] = oldest
    return JSONResponse(body)


async def _oldest_transaction(services: Services) -> dict[str, Any] | None:
    """What holds readers of the log back (see gateway/sync/horizon.py), so an operator can find
    it; a diagnostic only, so failing to get it never makes the gateway unready."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), services.db.session() as session:
            found = await oldest_transaction(session)
    except Exception:
        logger.warning("/readyz could not look for open transactions", exc_info=True)
        return None
    if found is None:
        return None
    return {"ageSeconds": found.age_seconds, "pid": found.pid, "state": found.state}
