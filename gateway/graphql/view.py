"""Strawberry's ASGI view, authenticated from HTTP headers or the WebSocket init payload."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from gateway.auth.tokens import bearer_token
from gateway.errors import Unauthenticated
from gateway.graphql.context import Context
from gateway.http_security import OriginPolicy
from gateway.services import Services

#: GraphiQL's scripts and styles, served locally so GraphiQL works without internet access.
IDE_ASSETS_DIR = Path(__file__).parent / "vendor"
IDE_ASSETS_PATH = "/graphql-assets"
_CDN = "https://unpkg.com/"


class GatewayGraphQL(GraphQL[Context, None]):
    """``graphiql=False`` answers a browser's GET /graphql with 404 instead of the IDE;
    ``origins`` are the browser origins whose pages may open WebSockets."""

    def __init__(
        self,
        schema: Schema,
        *,
        graphiql: bool = True,
        origins: OriginPolicy | None = None,
        connection_init_timeout_seconds: float = 10.0,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=connection_init_timeout_seconds),
        )
        self.origins = origins or OriginPolicy(frozenset())
        self._local_ide_html = ""
        self._ide_csp = ""
        if graphiql:
            self._local_ide_html = self.graphql_ide_html.replace(_CDN, f"{IDE_ASSETS_PATH}/")
            self._ide_csp = ide_content_security_policy(self._local_ide_html)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(
            self._local_ide_html, headers={"Content-Security-Policy": self._ide_csp}
        )

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """Strawberry lets WebSockets without ``Origin`` (not browsers) and from the gateway's
        own origin (GraphiQL) through and asks here about every other origin."""
        return self.origins.allows(origin)

    async def reject_websocket(self, request: WebSocket) -> WebSocket:
        """A 403 sent as a response (rather than uvicorn's answer to a close before accept) so
        that it passes ``SecurityHeaders`` like any other."""
        if "websocket.http.response" not in request.scope.get("extensions", {}):
            return await super().reject_websocket(request)
        await request.send_denial_response(PlainTextResponse("origin not allowed", status_code=403))
        return request

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


def ide_content_security_policy(html: str) -> str:
    """GraphiQL's page may run its own scripts (from this gateway, plus the inline bootstrap
    script, allowed by its hash) and talk to this gateway only (``'self'`` covers ws: and wss:
    of the same host). Styles stay ``'unsafe-inline'``: the page has an inline stylesheet and
    GraphiQL styles its editors inline; injected CSS cannot run code."""
    inline_scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in inline_scripts
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _payload_token(params: Mapping[str, Any] | None) -> str | None:
    if not isinstance(params, Mapping):
        return None
    for key, value in params.items():
        if isinstance(value, str) and key.lower() in ("authorization", "x-auth-token"):
            return bearer_token(value)
    return None
