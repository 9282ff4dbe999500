"""Each GraphQL operation counted and logged once, on both transports.

HTTP: ``ObservedGraphQL.execute_single`` wraps the view's, which runs every request that
reaches GraphQL (the quick path for documents seen before and Strawberry's pipeline alike).
Its result goes into the request's ``Exchange`` record, which the access log line
(``middleware.py``) reports at the end of the request.

WebSocket: ``observed_stream`` wraps the stream the schema hands to both protocols' handlers
for every operation (queries, mutations and subscriptions), from its start until it ends
(completed, stopped by the client, or the connection closed): one log line per operation,
with the connection's request id.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from gateway.graphql.caching import MAX_CACHED_OPERATIONS, cacheable
from gateway.graphql.context import Context
from gateway.graphql.http import Exchange, HttpRefusal
from gateway.graphql.validation import too_many_tokens
from gateway.graphql.view import GatewayGraphQL
from gateway.observability.metrics import UNKNOWN, Metrics

access_log = logging.getLogger("gateway.access")

_KINDS = {
    OperationType.QUERY: "query",
    OperationType.MUTATION: "mutation",
    OperationType.SUBSCRIPTION: "subscription",
}
_MAX_CODES = 5  # error codes kept for a log line (a refused batch can have thousands)


@dataclass(frozen=True, slots=True)
class Described:
    name: str | None
    kind: str
    root_fields: tuple[str, ...]


@dataclass(slots=True)
class OperationRecord:
    """What the access log line of an HTTP request says about its operation."""

    name: str | None = None
    kind: str | None = None
    codes: list[str] = field(default_factory=list)


#: The HTTP request's operation, filled by the view for the middleware's log line.
current_operation: ContextVar[OperationRecord | None] = ContextVar(
    "gateway_current_operation", default=None
)


def describe(query: str | None, operation_name: str | None, max_tokens: int) -> Described | None:
    """The operation ``operation_name`` picks in ``query`` (its name, type, root fields), or
    None when the document does not parse or has no such operation. Cached like the view's
    own parse: clients send the same few documents again and again."""
    if query is None:
        return None
    if not cacheable(query):
        return _describe(query, operation_name, max_tokens)
    return _cached_describe(query, operation_name, max_tokens)


def _describe(query: str, operation_name: str | None, max_tokens: int) -> Described | None:
    if too_many_tokens(query, max_tokens):
        return None
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    operation = operations[0]
    fields = tuple(s.name.value for s in operation.selection_set.selections if hasattr(s, "name"))
    name = operation.name.value if operation.name else None
    return Described(name, _KINDS[operation.operation], fields)


_cached_describe = functools.lru_cache(maxsize=MAX_CACHED_OPERATIONS)(_describe)


def error_codes(result: Any) -> list[str]:
    errors = getattr(result, "errors", None) or ()
    return [str((e.extensions or {}).get("code") or "") for e in errors]


class ObservedGraphQL(GatewayGraphQL):
    """The gateway's view with each HTTP operation counted (``Metrics``) and recorded for the
    access log."""

    async def _read_request(self, request: Request, exchange: Exchange) -> None:
        """The view's, with its refusals (before any GraphQL runs) counted by code."""
        try:
            await super()._read_request(request, exchange)
        except HttpRefusal as refusal:
            request.app.state.services.metrics.refused(refusal.code)
            record = current_operation.get()
            if record is not None:
                record.codes = [refusal.code]
            raise

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        started = time.perf_counter()
        codes: list[str] = []
        try:
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
            codes = error_codes(result)
            return result
        except HttpRefusal as refusal:
            codes = [refusal.code]
            raise
        finally:
            self._observed(context, request_data, time.perf_counter() - started, codes)

    def _observed(
        self, context: Context, data: GraphQLRequestData, seconds: float, codes: list[str]
    ) -> None:
        settings = context.services.settings
        described = describe(data.query, data.operation_name, settings.max_query_tokens)
        name = described.name if described else data.operation_name
        kind = described.kind if described else UNKNOWN
        context.services.metrics.operation(name, kind, seconds, codes)
        record = current_operation.get()
        if record is not None:
            record.name, record.kind, record.codes = name, kind, codes[:_MAX_CODES]


async def observed_stream(
    source: AsyncGenerator[Any, None],
    query: str | None,
    operation_name: str | None,
    context: Any,
    subscription_fields: Collection[str],
) -> AsyncIterator[Any]:
    """``source`` (a WebSocket operation's results), counted and logged when it ends;
    ``subscription_fields``: the schema's, the only ones that become labels."""
    services = getattr(context, "services", None)
    if services is None:  # the schema run without a gateway (tools, some tests)
        async with contextlib.aclosing(source):
            async for result in source:
                yield result
        return
    metrics: Metrics = services.metrics
    described = describe(query, operation_name, services.settings.max_query_tokens)
    name = described.name if described else operation_name
    kind = described.kind if described else UNKNOWN
    fields: tuple[str, ...] = ()
    if described is not None and kind == "subscription":
        # Only the schema's own fields: a document naming others is refused, and must not
        # make up labels.
        fields = tuple(f for f in described.root_fields if f in subscription_fields)
        metrics.subscription_started(fields)
    started = time.perf_counter()
    codes: list[str] = []
    ended = "completed"
    try:
        async with contextlib.aclosing(source):
            async for result in source:
                if len(codes) < _MAX_CODES:
                    codes += error_codes(result)[: _MAX_CODES - len(codes)]
                yield result
    except BaseException:
        ended = "stopped"  # by the client, the connection's end, or the server's shutdown
        raise
    finally:
        seconds = time.perf_counter() - started
        if kind == "subscription":
            metrics.operation(name, kind, None, codes)
            metrics.subscription_ended(name, fields, seconds)
        else:
            metrics.operation(name, kind, seconds, codes)
        access_log.info(
            "websocket operation",
            extra={
                "fields": {
                    "transport": "websocket",
                    "operation": name,
                    "type": kind,
                    "duration_ms": round(seconds * 1000, 2),
                    "outcome": ",".join(dict.fromkeys(codes)) or "ok",
                    "ended": ended,
                }
            },
        )
