"""What every REST adapter does with a request: find the caller, answer JSON, and turn the
domain's coded errors into HTTP statuses with a body that names the code (never a stack or
SQL text)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.principal import Principal
from gateway.auth.tokens import bearer_token
from gateway.errors import GatewayError, Unauthenticated
from gateway.services import Services

logger = logging.getLogger("gateway.rest")

# The GraphQL error codes of DESIGN.md as the HTTP statuses REST clients expect.
STATUS_OF_CODE: dict[str, int] = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "BAD_USER_INPUT": 400,
    "VALIDATION_FAILED": 400,
    "TABLE_NOT_ALLOWED": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "LIMIT_EXCEEDED": 413,
    "PERSISTED_QUERY_NOT_FOUND": 400,
    "DATABASE_UNAVAILABLE": 503,
    "INTERNAL_SERVER_ERROR": 500,
}


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def caller(request: Request) -> Principal:
    """The signed-in caller: ``Authorization: Bearer`` or SenSeeAct's ``X-Auth-Token``;
    ``UNAUTHENTICATED`` without a valid one."""
    headers = request.headers
    token = bearer_token(headers.get("authorization")) or headers.get("x-auth-token")
    if not token:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    services = services_of(request)
    principal = services.tokens.verify(token)
    await services.users.remember(principal)
    return principal


def error_response(error: GatewayError) -> JSON:
    """A coded domain error as its HTTP status, with the same code and message as GraphQL."""
    status = STATUS_OF_CODE.get(error.code, 400)
    return JSON({"code": error.code, "message": error.message, **_public(error.details)}, status)


def _public(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if isinstance(v, str | int | float | bool | list)}


Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(handler: Endpoint) -> Endpoint:
    """Answers a domain error with its status and anything else with a masked 500."""

    @wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except GatewayError as error:
            return error_response(error)
        except Exception:
            logger.exception("a REST request failed")
            return JSON({"code": "INTERNAL_SERVER_ERROR", "message": "internal error"}, 500)

    return answer
