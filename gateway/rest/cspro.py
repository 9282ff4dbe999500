"""CSPro's ``Data.getSyncStatus`` as REST: ``GET /api/data/{project}/sync-status``.

The answers have CSPro's shapes: plain arrays, ``"put"``/``"get"``, times to the second with a
``Z``, and no key for what is absent (a summary without a get has no ``lastGet``). The project
is the CSPro data source; devices are the synchronization services (their deviceId, or any
name they had, is the ``deviceName``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import BadUserInput, LimitExceeded
from gateway.rest import query
from gateway.rest.http import JSON, caller, endpoint, services_of
from gateway.sync import cases, history
from gateway.sync.exchange import Direction
from gateway.sync.history import SyncEventInfo

CONTENTS = ("summary", "syncHistory", "syncServices", "casesPendingSync", "caseStatus")
PAGE = 500  # the domain's largest page; the adapter pages through to CSPro's whole arrays


def event(e: SyncEventInfo) -> dict[str, Any]:
    return {
        "time": query.zulu(e.time),
        "deviceId": e.device_id,
        "deviceName": e.device_name,
        "username": e.username,
        "universe": e.universe,
        "direction": e.direction.value.lower(),
        "partial": e.partial,
    }


def _too_many(what: str, most: int) -> LimitExceeded:
    return LimitExceeded(
        f"more than {most} {what} (GATEWAY_REST_MAX_LIST_ITEMS); use GraphQL to page through",
        limit=most,
    )


@endpoint
async def sync_status(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    db, most = services.db, services.settings.rest_max_list_items
    project = request.path_params["project"]
    content = query.text(request, "content") or "summary"
    device_name = query.text(request, "deviceName")
    key = query.text(request, "key")
    if content not in CONTENTS:
        raise BadUserInput(f"content must be one of {', '.join(CONTENTS)}", field="content")
    if content in ("casesPendingSync", "caseStatus") and device_name is None:
        raise BadUserInput(f"{content} needs a deviceName", field="deviceName")

    async def last(direction: Direction) -> dict[str, Any]:
        found = await history.last_event(db, principal, project, direction, device_name)
        return {} if found is None else {f"last{direction.value.title()}": event(found)}

    if content == "summary":
        body: Any = await last(Direction.PUT) | await last(Direction.GET)
        if device_name is not None:
            body["casesPendingSync"] = await cases.pending_count(
                db, principal, project, device_name
            )
    elif content == "syncHistory":
        events, after = [], None
        while True:
            page = await history.sync_history(
                db, principal, project, device_name=device_name, first=PAGE, after=after
            )
            events += page.events
            if len(events) > most:
                raise _too_many("sync events", most)
            if not page.has_next_page:
                break
            after = page.events[-1].cursor
        body = {"syncHistory": [event(e) for e in events]}
        body |= await last(Direction.GET) | await last(Direction.PUT)
    elif content == "syncServices":
        found = await history.sync_services(db, principal, project)
        if len(found) > most:
            raise _too_many("sync services", most)
        body = [
            {
                "deviceId": s.device_id,
                # CSPro lists a service's current name first, then the older ones.
                "deviceNames": list(reversed(s.device_names)),
                "firstSyncTime": query.zulu(s.first_sync_time),
                "lastSyncTime": query.zulu(s.last_sync_time),
            }
            for s in found
        ]
    elif content == "casesPendingSync":
        assert device_name is not None
        pending: list[cases.PendingCase] = []
        cursor = None
        while True:
            found_cases, more = await cases.cases_pending_sync(
                db, principal, project, device_name, first=PAGE, after=cursor
            )
            pending += [c for _, c in found_cases]
            if len(pending) > most:
                raise _too_many("pending cases", most)
            if not more:
                break
            cursor = found_cases[-1][0]
        body = [{"key": c.key, "position": c.position, "uuid": c.uuid} for c in pending]
    else:
        assert device_name is not None
        if key is None:
            raise BadUserInput("caseStatus needs a key", field="key")
        status = await cases.case_status(db, principal, project, key, device_name)
        body = {
            "key": status.case.key,
            "position": status.case.position,
            "uuid": status.case.uuid,
            "syncHistory": [event(e) for e in status.sync_history],
        }
    return JSON(body)


ROUTES = [Route("/api/data/{project}/sync-status", sync_status, methods=["GET"])]

_EVENT = {
    "type": "object",
    "required": ["time", "deviceId", "deviceName", "username", "universe", "direction", "partial"],
    "properties": {
        "time": {"type": "string", "format": "date-time", "example": "2026-06-09T15:27:03Z"},
        "deviceId": {"type": "string"},
        "deviceName": {"type": "string"},
        "username": {"type": "string"},
        "universe": {"type": "string"},
        "direction": {"type": "string", "enum": ["put", "get"]},
        "partial": {"type": "boolean"},
    },
}
_CASE = {
    "type": "object",
    "required": ["key", "position", "uuid"],
    "properties": {
        "key": {"type": "string"},
        "position": {"type": "integer"},
        "uuid": {"type": "string", "format": "uuid"},
    },
}
SCHEMAS: dict[str, Any] = {
    "CsproSyncEvent": _EVENT,
    "CsproPendingCase": _CASE,
}
_REF_EVENT = {"$ref": "#/components/schemas/CsproSyncEvent"}
_REF_CASE = {"$ref": "#/components/schemas/CsproPendingCase"}
_ANSWER = {
    "oneOf": [
        {
            "title": "summary / syncHistory",
            "type": "object",
            "properties": {
                "lastPut": _REF_EVENT,
                "lastGet": _REF_EVENT,
                "casesPendingSync": {"type": "integer", "minimum": 0},
                "syncHistory": {"type": "array", "items": _REF_EVENT},
            },
            "additionalProperties": False,
        },
        {
            "title": "syncServices",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["deviceId", "deviceNames", "firstSyncTime", "lastSyncTime"],
                "properties": {
                    "deviceId": {"type": "string"},
                    "deviceNames": {"type": "array", "items": {"type": "string"}},
                    "firstSyncTime": {"type": "string", "format": "date-time"},
                    "lastSyncTime": {"type": "string", "format": "date-time"},
                },
            },
        },
        {"title": "casesPendingSync", "type": "array", "items": _REF_CASE},
        {
            "title": "caseStatus",
            "type": "object",
            "required": ["key", "position", "uuid", "syncHistory"],
            "properties": {
                **_CASE["properties"],
                "syncHistory": {"type": "array", "items": _REF_EVENT},
            },
        },
    ]
}
PATHS: dict[str, Any] = {
    "/api/data/{project}/sync-status": {
        "get": {
            "operationId": "csproGetSyncStatus",
            "tags": ["CSPro"],
            "summary": "CSPro's Data.getSyncStatus: sync history, services and pending cases",
            "security": [{"bearer": []}, {"authToken": []}],
            "parameters": [
                {
                    "name": "project",
                    "in": "path",
                    "required": True,
                    "description": "The project's code (CSPro's data source).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "content",
                    "in": "query",
                    "description": "What to return (default: summary).",
                    "schema": {"type": "string", "enum": list(CONTENTS)},
                },
                {
                    "name": "deviceName",
                    "in": "query",
                    "description": "The sync service: its deviceId or any name it has had "
                    "(needed by casesPendingSync and caseStatus).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "key",
                    "in": "query",
                    "description": "The case's key (caseStatus).",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The content asked for, in CSPro's shape.",
                    "content": {"application/json": {"schema": _ANSWER}},
                },
                **{
                    status: {"$ref": f"#/components/responses/Error{status}"}
                    for status in ("400", "401", "403", "404", "413")
                },
            },
        }
    }
}
