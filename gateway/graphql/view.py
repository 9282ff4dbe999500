"""Strawberry's ASGI view, authenticated from HTTP headers or the WebSocket init payload.

Over HTTP it speaks GraphQL over HTTP (``gateway/graphql/http.py``): the request is checked
(method, ``Accept``, content type, JSON shape, which operation) before anything runs, and every
refusal is a GraphQL error document. A request may name its document by hash (persisted
queries, ``gateway/graphql/persisted.py``). Subscriptions also run over HTTP, as a stream, for
networks that block WebSockets: multipart (``Accept: multipart/mixed;subscriptionSpec=1.0``)
or GraphQL over SSE (``Accept: text/event-stream``). Over WebSockets, both protocols close a
connection that sends no ``connection_init`` in time, every close says why, and operations
started count against the caller's rate limit like HTTP requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.types.unset import UNSET, UnsetType

from gateway.auth.tokens import bearer_token
from gateway.errors import BadUserInput, Forbidden, GatewayError, Unauthenticated
from gateway.graphql.caching import MAX_CACHED_OPERATIONS, cacheable
from gateway.graphql.context import Context
from gateway.graphql.http import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    Exchange,
    HttpRefusal,
    check_content_type,
    is_request_error,
    negotiate,
    parse_body,
    parse_query_params,
    request_data,
)
from gateway.graphql.ide import with_example
from gateway.graphql.persisted import PersistedQueries, PersistedQueryNotFound
from gateway.graphql.quick import QuickOperations
from gateway.graphql.validation import too_many_tokens
from gateway.http_limits import RateLimiter, address_key, user_key
from gateway.http_security import OriginPolicy
from gateway.live.guard import token_seconds
from gateway.services import Services
from gateway.tasks import cancelled

#: GraphiQL's scripts and styles, served locally so GraphiQL works without internet access.
IDE_ASSETS_DIR = Path(__file__).parent / "vendor"
IDE_ASSETS_PATH = "/graphql-assets"
_CDN = "https://unpkg.com/"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

#: The HTTP request being answered, for the hooks Strawberry calls without it.
_EXCHANGE: ContextVar[Exchange] = ContextVar("graphql_http_exchange")


class GatewayGraphQLWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy ``graphql-ws`` protocol, which has no ``connection_init`` deadline of its
    own in Strawberry: the connection is closed with 4408 (as ``graphql-transport-ws`` does)
    when none arrived within the view's ``connection_init_wait_timeout``."""

    view: GatewayGraphQL
    _init_received = False

    async def handle(self) -> None:
        deadline = asyncio.create_task(self._close_without_init())
        try:
            await super().handle()
        finally:
            await cancelled(deadline)

    async def _close_without_init(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self._init_received:
            with contextlib.suppress(Exception):  # the client may be gone already
                await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage) -> None:
        # Strawberry indexes every message as an object with a type: a JSON array, string or
        # number raised TypeError, an object without "type" KeyError, and either dropped the
        # connection. This protocol ignores what it cannot parse.
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return
        if message.get("type") in ("start", "stop") and not isinstance(message.get("id"), str):
            return  # no operation to answer
        start = message.get("type") == "start" and self.connection_acknowledged
        if start and message["id"] not in self.subscriptions:
            try:
                message = self.view.with_persisted_document(message)  # type: ignore[assignment]
            except GatewayError as error:
                payload = {"message": error.message, "extensions": error.extensions}
                await self.send_message({"type": "error", "id": message["id"], "payload": payload})
                return
        if start and (problem := malformed_operation(message)):
            error = BadUserInput(problem)
            payload = {"message": problem, "extensions": error.extensions}
            await self.send_message({"type": "error", "id": message["id"], "payload": payload})
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        self._init_received = True
        payload = message.get("payload")
        if payload is None or isinstance(payload, dict):
            self.context.connection_params = payload
            try:
                await self.view.on_ws_connect(self.context)
            except ConnectionRejectionError as exc:
                # Strawberry's answer, closed with 4403 and the reason instead of 1011 (an
                # internal error) and none.
                await self.send_message({"type": "connection_error", "payload": exc.payload})
                await self.websocket.close(code=4403, reason=close_reason(exc.payload))
                return
            await self.send_message({"type": "connection_ack"})
            self.connection_acknowledged = True
            if self.keep_alive:
                self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())
            return
        await super().handle_connection_init(message)  # a payload that is not an object

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and (error := self.view.ws_rate_limited(self.context)):
            await self.send_message({"type": "error", "id": message["id"], "payload": error})
            return
        await super().handle_start(message)


class GatewayGraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``, with operations counted against the caller's rate limit, and
    closes that say why: a refused ``connection_init`` closes with 4403 and the reason
    ("token expired", "authentication required: ..."); when the connection's token expires,
    each running operation gets an ``UNAUTHENTICATED`` error, then the connection closes with
    4403 "token expired: reconnect with a new token". graphql-ws clients reconnect after a
    4403 and call a ``connectionParams`` function again for a fresh token; a connection kept
    open would only refuse every later operation."""

    view: GatewayGraphQL
    _expiry: asyncio.Task[None] | None = None

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            if self._expiry is not None:
                await cancelled(self._expiry)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:  # type: ignore[override]
        """Strawberry's, with the refusal's reason in the close (Strawberry says "Forbidden")."""
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.websocket.close(code=4403, reason=close_reason(exc.payload))
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        self._expiry = asyncio.create_task(self._close_when_token_expires())

    async def _close_when_token_expires(self) -> None:
        seconds = token_seconds(self.context.principal)
        if seconds is None:
            return
        await asyncio.sleep(seconds)
        # Every operation ends with its error before the close, so that a client reconnecting
        # after it does not start them again on its own with the variables they began with
        # (a databaseActions stream would replay from its first progress).
        error = Unauthenticated(TOKEN_EXPIRED)
        payload = [{"message": error.message, "extensions": error.extensions}]
        with contextlib.suppress(Exception):  # the client may be gone already
            for operation_id in list(self.operations):
                # Stopped first: a stream sending after the close would fail in its task.
                await self.cleanup_operation(operation_id)
                await self.send_message({"id": operation_id, "type": "error", "payload": payload})
            await self.websocket.close(code=4403, reason=TOKEN_EXPIRED)

    async def handle_message(self, message: Message) -> None:
        # Strawberry indexes every message as an object: a JSON array, string or number raised
        # TypeError and dropped the connection without a close code.
        if not isinstance(message, dict):
            await self.handle_invalid_message("WebSocket message must be a JSON object")
            return
        kind = message.get("type")
        if kind in ("subscribe", "complete") and not isinstance(message.get("id"), str):
            await self.handle_invalid_message(f"a {kind} message needs a string 'id'")
            return
        if (
            kind == "subscribe"
            and self.connection_acknowledged
            and message["id"] not in self.operations
        ):
            try:
                message = self.view.with_persisted_document(message)  # type: ignore[assignment]
            except GatewayError as error:
                payload = [{"message": error.message, "extensions": error.extensions}]
                await self.send_message({"id": message["id"], "type": "error", "payload": payload})
                return
        if kind == "subscribe" and (problem := malformed_operation(message)):
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and (error := self.view.ws_rate_limited(self.context))
        ):
            await self.send_message({"id": message["id"], "type": "error", "payload": [error]})
            return
        await super().handle_subscribe(message)


class GatewayGraphQL(GraphQL[Context, None]):
    """``graphiql=False`` answers a browser's GET /graphql with 404 instead of the IDE;
    ``origins`` are the browser origins whose pages may open WebSockets; ``rate_limiter``
    counts the operations started over WebSockets (HTTP requests are counted by
    ``gateway.http_limits.TransportLimits``); ``max_query_tokens`` bounds the parse done to
    pick the operation before running it."""

    graphql_ws_handler_class = GatewayGraphQLWSHandler
    graphql_transport_ws_handler_class = GatewayGraphQLTransportWSHandler

    def __init__(
        self,
        schema: Schema,
        *,
        graphiql: bool = True,
        origins: OriginPolicy | None = None,
        connection_init_timeout_seconds: float = 10.0,
        rate_limiter: RateLimiter | None = None,
        max_query_tokens: int | None = None,
        persisted: PersistedQueries | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            # Subscriptions over HTTP too, for networks that block WebSockets: multipart
            # (Apollo Client's HttpLink) and GraphQL over SSE (distinct connections mode).
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
            ),
            connection_init_wait_timeout=timedelta(seconds=connection_init_timeout_seconds),
        )
        self.origins = origins or OriginPolicy(frozenset())
        self.rate_limiter = rate_limiter or RateLimiter(0, 1)
        self.max_query_tokens = max_query_tokens
        self.persisted = persisted or PersistedQueries()
        self._local_ide_html = ""
        self._ide_csp = ""
        if graphiql:
            local = self.graphql_ide_html.replace(_CDN, f"{IDE_ASSETS_PATH}/")
            self._local_ide_html = with_example(local)
            self._ide_csp = ide_content_security_policy(self._local_ide_html)

    # GraphQL over HTTP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        streaming = self._get_stream_transport_from_headers(request.headers)
        exchange = Exchange(
            media_type=negotiate(request.headers.get("accept")),
            stream=streaming.protocol if streaming is not None else None,
        )
        reset = _EXCHANGE.set(exchange)
        try:
            await self._read_request(request, exchange)
            response = await self.run(request)
        except HTTPException as exc:
            response = _refusal(exchange, HttpRefusal.for_status(exc.status_code, exc.reason))
        except HttpRefusal as refusal:
            response = _refusal(exchange, refusal)
        finally:
            # Timers scheduled during the request (a database connection's, say) keep a copy
            # of this context until they fire: it must not keep the request alive with it.
            exchange.request = None
            _EXCHANGE.reset(reset)
        await response(scope, receive, send)

    async def _read_request(self, request: Request, exchange: Exchange) -> None:
        """Everything that can be refused before the caller is even authenticated: the
        method, ``Accept``, the content type, the JSON and its parameters, the operation."""
        method = request.method
        if method not in ("GET", "POST"):
            raise HttpRefusal(
                405, f"{method} is not supported: use GET or POST", headers={"Allow": "GET, POST"}
            )
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return  # GraphiQL, or 404 where it is off
        if exchange.media_type is None and exchange.stream is None:
            raise HttpRefusal(
                406, f"'Accept' must allow {GRAPHQL_RESPONSE_JSON} or application/json"
            )
        if method == "GET":
            data = parse_query_params(request.query_params)
        else:
            check_content_type(request.headers.get("content-type"))
            data = parse_body(await request.body())
        parsed = request_data(data, exchange.stream or "http")
        exchange.request = self._with_persisted_query(parsed, data.get("documentId"))
        chosen = self._check_operation(exchange.request, method)
        if exchange.stream and chosen is not OperationType.SUBSCRIPTION and exchange.media_type:
            # Clients that can read streams list them in every request's Accept (urql does):
            # a query or mutation gets its one JSON answer all the same.
            exchange.stream = None
            exchange.request = dataclasses.replace(exchange.request, protocol="http")
        elif exchange.media_type is None:
            exchange.media_type = JSON  # refusals before the stream starts: one JSON document

    def _with_persisted_query(
        self, data: GraphQLRequestData, document_id: object
    ) -> GraphQLRequestData:
        """The request with the document its hash names (``persisted.py``). Not found is
        answered 200, as Apollo Server does: the client's next step is to send the query, so
        it is no failure (and ``Cache-Control: no-store`` keeps caches from keeping it)."""
        try:
            query = self.persisted.resolve(data.query, data.extensions, document_id)
        except PersistedQueryNotFound as exc:
            raise HttpRefusal(
                200, exc.message, code=exc.code, headers={"Cache-Control": "no-store"}
            ) from exc
        except Forbidden as exc:
            raise HttpRefusal(403, exc.message, code=exc.code) from exc
        except BadUserInput as exc:
            raise HttpRefusal(400, exc.message) from exc
        if query is data.query:
            return data
        return GraphQLRequestData(
            query=query,
            variables=data.variables,
            operation_name=data.operation_name,
            extensions=data.extensions,
            protocol=data.protocol,
        )

    def with_persisted_document(self, message: Mapping[str, Any]) -> Mapping[str, Any]:
        """A WebSocket ``subscribe`` (``start``) message with the document its payload's hash
        names; raises the coded error otherwise (``persisted.py``)."""
        payload = message.get("payload")
        if not isinstance(payload, dict):
            return message  # malformed_operation says what is wrong
        extensions = payload.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            return message
        query = payload.get("query")
        resolved = self.persisted.resolve(
            query if isinstance(query, str) else None, extensions, payload.get("documentId")
        )
        if resolved is None or resolved is query:
            return message
        return {**message, "payload": {**payload, "query": resolved}}

    def _check_operation(self, data: GraphQLRequestData, method: str) -> OperationType | None:
        """Which operation runs (None: the document does not parse, left to GraphQL, which
        reports where). It must be unambiguous (several without ``operationName`` is 400,
        rather than running the first), and this method must be allowed to run it: a mutation
        only over POST (405 over GET), a subscription only over WebSockets or as a stream."""
        if data.query is None:
            return None
        operations = _operations(data.query, self.max_query_tokens)
        if operations is None:
            return None
        name = data.operation_name
        if name is None and len(operations) > 1:
            raise HttpRefusal(
                400,
                f"the document has {len(operations)} operations: name the one to run with "
                "'operationName'",
            )
        chosen = next((kind for n, kind in operations if name is None or n == name), None)
        if name is not None and chosen is None:
            raise HttpRefusal(400, f"the document has no operation named {name!r}")
        if chosen is OperationType.SUBSCRIPTION and data.protocol == "http":
            raise HttpRefusal(
                400,
                "subscriptions run over WebSockets at this path (graphql-transport-ws or "
                "graphql-ws), or over HTTP as a stream: send 'Accept: multipart/mixed;"
                "subscriptionSpec=1.0' or 'Accept: text/event-stream'",
            )
        if chosen is OperationType.MUTATION and method == "GET":
            raise HttpRefusal(
                405, "mutations are not allowed over GET: use POST", headers={"Allow": "POST"}
            )
        return chosen

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A browser's GET without an operation, also not one named by hash (a persisted
        query over GET has ``extensions`` or ``documentId`` instead of ``query``)."""
        params = request.query_params
        named = params.get("extensions") is not None or params.get("documentId") is not None
        return not named and super().should_render_graphql_ide(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = _EXCHANGE.get().request
        assert parsed is not None, "_read_request parses every request that runs"
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, with its refusals (already caught by ``_check_operation`` for
        documents that parse) as coded errors."""
        allowed = {StrawberryOperationType.QUERY}
        if request_adapter.method == "POST":
            allowed.add(StrawberryOperationType.MUTATION)
        quick: QuickOperations | None = getattr(self.schema, "quick", None)
        if quick is not None:
            result = await quick.execute(request_data, context, allowed)
            if result is not None:
                return result
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HttpRefusal(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            raise HttpRefusal(
                405, exc.as_http_error_reason(request_adapter.method), headers={"Allow": "POST"}
            ) from exc
        except MissingQueryError as exc:
            raise HttpRefusal(400, "the request has no 'query'") from exc

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """A request error under ``application/graphql-response+json``: 400 (500 if the
        gateway failed), without ``data``."""
        response = await super().process_result(request, result)
        exchange = _EXCHANGE.get(None)
        if (
            exchange is not None
            and exchange.media_type == GRAPHQL_RESPONSE_JSON
            and is_request_error(result.data, result.errors)
        ):
            response.pop("data", None)
            failed = any(
                (e.extensions or {}).get("code") == INTERNAL_SERVER_ERROR
                for e in result.errors or ()
            )
            exchange.status = 500 if failed else 400
        return response

    def encode_json(self, data: object) -> str | bytes:
        # orjson writes a page of 1,000 actions several times faster than json.dumps. Text, not
        # bytes: WebSocket messages of GraphQL's protocols are text frames.
        try:
            return orjson.dumps(data).decode()
        except TypeError:  # what orjson refuses (a lone surrogate echoed in an error): as before
            return super().encode_json(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        exchange = _EXCHANGE.get(None)
        if exchange is not None:
            response.headers["content-type"] = exchange.content_type
            if exchange.status != 200:
                response.status_code = exchange.status
        return response

    # WebSockets

    def ws_rate_limited(self, context: Context) -> dict[str, Any] | None:
        """The error for an operation the connection's user may not start yet, or None."""
        try:
            key = user_key(context.principal.user_id)
        except Unauthenticated:
            key = address_key(context.request.scope)
        wait = self.rate_limiter.take(key)
        return self.rate_limiter.error(wait, "operations") if wait > 0 else None

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
        token = _payload_token(context.connection_params)
        await context.authenticate(token)
        try:
            _ = context.principal
        except Unauthenticated as exc:
            message = exc.message if token is not None else WS_AUTHENTICATION_REQUIRED
            raise ConnectionRejectionError({"code": exc.code, "message": message}) from exc
        return UNSET


#: WebSocket close reasons are at most 123 bytes of UTF-8 (RFC 6455, 5.5).
MAX_CLOSE_REASON_BYTES = 123
TOKEN_EXPIRED = "token expired: reconnect with a new token"
WS_AUTHENTICATION_REQUIRED = (
    'authentication required: send {"Authorization": "Bearer <token>"} in connection_init'
)


def close_reason(payload: Mapping[str, Any] | None) -> str:
    """The reason a refused connection is closed with: the refusal's message, cut to fit."""
    message = str((payload or {}).get("message") or "Forbidden")
    encoded = message.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return message
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


def malformed_operation(message: Mapping[str, Any]) -> str | None:
    """What is wrong with the payload of a ``subscribe`` (``start``) message, checked as HTTP
    checks a request's body: Strawberry passes it to graphql-core as it is, where variables
    that are not an object raised AttributeError (an internal error)."""
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "the payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "'query' must be a string"
    for name, kind, what in (
        ("variables", dict, "an object"),
        ("operationName", str, "a string"),
        ("extensions", dict, "an object"),
    ):
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"'{name}' must be {what}"
    return None


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


def _refusal(exchange: Exchange, refusal: HttpRefusal) -> Response:
    headers = {**refusal.headers, "content-type": exchange.content_type}
    return Response(refusal.body(), status_code=refusal.status, headers=headers)


def _operations(
    query: str, max_tokens: int | None
) -> tuple[tuple[str | None, OperationType], ...] | None:
    """The document's operations (name, kind), or None when it does not parse."""
    if not cacheable(query):
        return _parse_operations(query, max_tokens)
    return _cached_operations(query, max_tokens)


def _parse_operations(
    query: str, max_tokens: int | None
) -> tuple[tuple[str | None, OperationType], ...] | None:
    if max_tokens is not None and too_many_tokens(query, max_tokens):
        return None  # not worth parsing: validation refuses it without parsing it either
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    return tuple(
        (d.name.value if d.name else None, d.operation)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


_cached_operations = functools.lru_cache(maxsize=MAX_CACHED_OPERATIONS)(_parse_operations)


def _payload_token(params: Mapping[str, Any] | None) -> str | None:
    """The token of a ``connection_init`` payload: ``{"Authorization": "Bearer ..."}``, or
    the same inside ``headers`` (``{"headers": {"Authorization": ...}}``, what RxDB's GraphQL
    replication and other clients that forward their HTTP headers send)."""
    if not isinstance(params, Mapping):
        return None
    for found in (params, params.get("headers")):
        if not isinstance(found, Mapping):
            continue
        for key, value in found.items():
            if isinstance(value, str) and key.lower() in ("authorization", "x-auth-token"):
                return bearer_token(value)
    return None
