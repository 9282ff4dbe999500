"""Census's ``GET /api/v1/syncs/{sync_id}/sync_runs`` over the gateway's sync runs.

Answers carry Census's envelope (``"status": "success"``, ``pagination``, ``data``), snake_case
fields, lower-case statuses and times to the millisecond with a ``Z``; errors carry
``"status": "error"`` with the gateway's code and message. Callers sign in with a Bearer token
or, where ``GATEWAY_REST_BASIC_AUTH_FILE`` enables it, HTTP basic auth.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth.principal import Principal
from gateway.errors import BadUserInput, GatewayError, Unauthenticated
from gateway.rest import query
from gateway.rest.basic import basic_auth
from gateway.rest.http import JSON, caller, endpoint, error_response, services_of
from gateway.sync import runs as domain
from gateway.sync.runs.paging import DEFAULT_PER_PAGE, SortOrder


async def census_caller(request: Request) -> Principal:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        path = services_of(request).settings.rest_basic_auth_file
        if path is None:
            raise Unauthenticated("basic auth is not enabled here: send a Bearer token")
        return basic_auth(path).verify(credentials.strip())
    return await caller(request)


def run(r: domain.RunInfo) -> dict[str, Any]:
    def at(value: Any) -> str | None:
        return query.zulu(value, millis=True)

    return {
        "id": r.id,
        "created_at": at(r.created_at),
        "updated_at": at(r.updated_at),
        "completed_at": at(r.completed_at),
        "error_code": r.error_code,
        "error_message": r.error_message,
        "error_detail": r.error_detail,
        "status": r.status.value.lower(),
        "sync_id": r.sync_id,
        **r.counters,
        "scheduled_execution_time": at(r.scheduled_execution_time),
        "full_sync": r.full_sync,
        "sync_trigger_reason": {"ui_tag": r.trigger.ui_tag, "ui_detail": r.trigger.ui_detail},
        "canceled": r.canceled,
        "current_step": r.current_step,
    }


@endpoint
async def sync_runs(request: Request) -> Response:
    try:
        principal = await census_caller(request)
        order = (query.text(request, "order") or "desc").upper()
        if order not in SortOrder.__members__:
            raise BadUserInput("order must be asc or desc", field="order")
        page = await domain.list_runs(
            services_of(request).db,
            principal,
            query.path_integer(request, "sync_id"),
            page=query.integer(request, "page", 1),
            per_page=query.integer(request, "per_page", DEFAULT_PER_PAGE),
            order=SortOrder(order),
        )
    except GatewayError as error:
        answer = error_response(error)
        body = {"status": "error", **orjson.loads(bytes(answer.body))}
        headers = {"WWW-Authenticate": "Basic"} if answer.status_code == 401 else None
        return JSON(body, answer.status_code, headers=headers)
    p = page.pagination
    return JSON(
        {
            "status": "success",
            "pagination": {
                "total_records": p.total_records,
                "per_page": p.per_page,
                "prev_page": p.prev_page,
                "page": p.page,
                "next_page": p.next_page,
                "last_page": p.last_page,
            },
            "data": [run(r) for r in page.runs],
        }
    )


ROUTES = [Route("/api/v1/syncs/{sync_id}/sync_runs", sync_runs, methods=["GET"])]

_TIME = {"type": ["string", "null"], "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_RUN = {
    "type": "object",
    "required": ["id", "created_at", "updated_at", "status", "sync_id"],
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "completed_at": _TIME,
        "error_code": {"type": ["string", "null"]},
        "error_message": {"type": ["string", "null"]},
        "error_detail": {"type": ["string", "null"]},
        "status": {
            "type": "string",
            "enum": ["working", "completed", "failed", "skipped", "queued"],
        },
        "sync_id": {"type": "integer"},
        **{name: _COUNT for name in domain.COUNTER_NAMES},
        "scheduled_execution_time": _TIME,
        "full_sync": {"type": "boolean"},
        "sync_trigger_reason": {
            "type": "object",
            "properties": {
                "ui_tag": {"type": "string"},
                "ui_detail": {"type": ["string", "null"]},
            },
        },
        "canceled": {"type": "boolean"},
        "current_step": {
            "type": ["string", "null"],
            "description": "Available if the sync is not completed.",
        },
    },
}
_PAGE = {
    "type": "object",
    "required": ["status", "pagination", "data"],
    "properties": {
        "status": {"const": "success"},
        "pagination": {
            "type": "object",
            "properties": {
                "total_records": {"type": "integer"},
                "per_page": {"type": "integer"},
                "prev_page": {"type": ["integer", "null"]},
                "page": {"type": "integer"},
                "next_page": {"type": ["integer", "null"]},
                "last_page": {"type": "integer"},
            },
        },
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/CensusSyncRun"}},
    },
}
SCHEMAS: dict[str, Any] = {"CensusSyncRun": _RUN}
PATHS: dict[str, Any] = {
    "/api/v1/syncs/{sync_id}/sync_runs": {
        "get": {
            "operationId": "censusListSyncRuns",
            "tags": ["Census"],
            "summary": "Census's list of a sync's runs",
            "security": [{"bearer": []}, {"basic": []}],
            "parameters": [
                {
                    "name": "sync_id",
                    "in": "path",
                    "required": True,
                    "description": "The ID of the sync for which to list runs.",
                    "schema": {"type": "integer", "minimum": 1, "maximum": query.MAX_INT},
                },
                {
                    "name": "page",
                    "in": "query",
                    "description": "Which page, from 1 (0 means 1).",
                    "schema": {"type": "integer", "minimum": 0, "maximum": query.MAX_INT},
                },
                {
                    "name": "per_page",
                    "in": "query",
                    "description": "Results per page, 1 to 100 (default 25).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                },
                {
                    "name": "order",
                    "in": "query",
                    "description": "By creation time: asc or desc (default).",
                    "schema": {"type": "string", "enum": ["asc", "desc"]},
                },
            ],
            "responses": {
                "200": {
                    "description": "The outcome of the request",
                    "content": {"application/json": {"schema": _PAGE}},
                },
                **{
                    status: {"$ref": f"#/components/responses/Error{status}"}
                    for status in ("400", "401", "403", "404")
                },
            },
        }
    }
}
