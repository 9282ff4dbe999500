"""The outermost ASGI layer: a request id for every HTTP request and WebSocket connection,
returned in ``X-Request-ID`` and set for every log line the request causes; one access log
line per HTTP request (with its GraphQL operation, if one ran) and one per WebSocket
connection when it closes; the responses and open WebSockets counted.

What is logged is chosen so that no secret or record data can get in: the path without its
query string (a GET's ``query`` and ``variables`` travel there), no header but the request
id, operation names and error codes but never variables, messages or results."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.metrics import Metrics
from gateway.observability.operations import OperationRecord, current_operation
from gateway.observability.request_id import current_request_id, request_id_from

access_log = logging.getLogger("gateway.access")
_HEADER = b"x-request-id"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope.get("headers") or [])
        id_token = current_request_id.set(request_id)
        record = OperationRecord()
        record_token = current_operation.set(record)
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before a response starts

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *_without_id(message.get("headers")),
                    (_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            self.metrics.response(status)
            fields: dict[str, Any] = {
                "transport": "http",
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            if record.kind is not None:
                fields |= {"operation": record.name, "type": record.kind}
            if record.kind is not None or record.codes:
                fields["outcome"] = ",".join(dict.fromkeys(record.codes)) or "ok"
            access_log.info("http request", extra={"fields": fields})
            current_operation.reset(record_token)
            current_request_id.reset(id_token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope.get("headers") or [])
        # Set for the connection's handler, and so for its operations' tasks, which copy it.
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        accepted = False
        close_code: int | None = None

        async def sent(message: Message) -> None:
            nonlocal accepted, close_code
            if message["type"] == "websocket.accept":
                message["headers"] = [
                    *_without_id(message.get("headers")),
                    (_HEADER, request_id.encode()),
                ]
                accepted = True
                self.metrics.websockets.inc()
            elif message["type"] == "websocket.close":
                close_code = message.get("code", 1000)
            await send(message)

        async def received() -> Message:
            nonlocal close_code
            message = await receive()
            if message["type"] == "websocket.disconnect" and close_code is None:
                close_code = message.get("code", 1005)
            return message

        try:
            await self.app(scope, received, sent)
        finally:
            if accepted:
                self.metrics.websockets.dec()
            access_log.info(
                "websocket closed" if accepted else "websocket refused",
                extra={
                    "fields": {
                        "transport": "websocket",
                        "path": scope.get("path"),
                        "close_code": close_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
            current_request_id.reset(token)


def _without_id(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in (headers or ()) if k.lower() != _HEADER]
