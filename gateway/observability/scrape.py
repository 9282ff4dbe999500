"""``GET /metrics``: the Prometheus text exposition of this replica (``GATEWAY_METRICS``),
for scrapers sending ``Authorization: Bearer <GATEWAY_METRICS_TOKEN>`` when that is set."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.auth.tokens import bearer_token
from gateway.services import Services


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    expected = services.settings.metrics_token
    if expected is not None:
        given = bearer_token(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return PlainTextResponse(
                "a metrics token is required: send 'Authorization: Bearer <token>'",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body = await services.metrics.exposition(services.db)
    return Response(
        body, headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"}
    )


def metrics_routes() -> list[Route]:
    return [Route("/metrics", metrics_endpoint, methods=["GET"])]
