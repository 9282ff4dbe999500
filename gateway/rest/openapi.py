"""One OpenAPI 3.1 document for every REST adapter, served at ``/openapi.json``: each adapter's
``PATHS`` (and ``SCHEMAS``, when it has some), the error answers they share, and the ways to
sign in (Bearer, SenSeeAct's ``X-Auth-Token``, and basic auth where Census's paths accept it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.rest.http import JSON, STATUS_OF_CODE

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "enum": sorted(STATUS_OF_CODE)},
        "message": {"type": "string"},
        "status": {"const": "error", "description": "Census's envelope, on its paths only."},
        "field": {"type": "string", "description": "The parameter at fault, when there is one."},
    },
}
_REASONS = {
    "400": "Bad input (BAD_USER_INPUT); nothing changed.",
    "401": "No valid credentials (UNAUTHENTICATED).",
    "403": "Not allowed (FORBIDDEN).",
    "404": "No such project, sync, device or case, or not yours (NOT_FOUND).",
    "409": "In a state that does not allow it (CONFLICT).",
    "413": "Over a limit (LIMIT_EXCEEDED).",
    "503": "The database is unavailable (DATABASE_UNAVAILABLE); try again.",
}


@cache
def document() -> dict[str, Any]:
    from gateway.rest import ADAPTERS  # the adapters list this module too

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": _ERROR}
    for adapter in ADAPTERS:
        paths |= adapter.PATHS
        schemas |= getattr(adapter, "SCHEMAS", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sync Gateway: the reference APIs' REST paths",
            "version": "1",
            "description": "The REST paths of SenSeeAct, CSPro, RegardingWork and Census, "
            "served over the gateway's sync log (GraphQL at /graphql has everything).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                f"Error{status}": {
                    "description": reason,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                for status, reason in _REASONS.items()
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "authToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Where GATEWAY_REST_BASIC_AUTH_FILE enables it.",
                },
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSON(document())


ROUTES = [Route("/openapi.json", openapi, methods=["GET"])]
PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "tags": ["OpenAPI"],
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document of the REST paths.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
}
