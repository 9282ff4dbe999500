"""Strawberry's ASGI view, authenticated from HTTP headers or the WebSocket init payload."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from gateway.auth.tokens import bearer_token
from gateway.errors import Unauthenticated
from gateway.graphql.context import Context
from gateway.services import Services

#: GraphiQL's scripts and styles, served locally so GraphiQL works without internet access.
IDE_ASSETS_DIR = Path(__file__).parent / "vendor"
IDE_ASSETS_PATH = "/graphql-assets"
_CDN = "https://unpkg.com/"


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Schema, *, connection_init_timeout_seconds: float = 10.0) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=connection_init_timeout_seconds),
        )
        ide_html = self.graphql_ide_html
        self._local_ide_html = ide_html.replace(_CDN, f"{IDE_ASSETS_PATH}/") if ide_html else ""

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self._local_ide_html)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services: Services = request.app.state.services
        context = Context(services=services, request=request, response=response)
        if isinstance(request, Request):
            headers = request.headers
            # SenSeeAct clients send the token as X-Auth-Token.
            token = bearer_token(headers.get("authorization")) or bearer_token(
                headers.get("x-auth-token")
            )
            await context.authenticate(token)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """A connection without a valid token is refused at ``connection_init``
        (graphql-transport-ws closes it with 4403)."""
        await context.authenticate(_payload_token(context.connection_params))
        try:
            _ = context.principal
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        return UNSET


def _payload_token(params: Mapping[str, Any] | None) -> str | None:
    if not isinstance(params, Mapping):
        return None
    for key, value in params.items():
        if isinstance(value, str) and key.lower() in ("authorization", "x-auth-token"):
            return bearer_token(value)
    return None
