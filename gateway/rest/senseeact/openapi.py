"""The OpenAPI 3.1 path items of SenSeeAct's sync controller."""

from __future__ import annotations

from typing import Any

_INT64 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_ORDER = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_TABLES = {"type": ["array", "null"], "items": {"type": "string"}}

PROGRESS_IN = {
    "type": "object",
    "required": ["table", "time", "order"],
    "properties": {
        "table": {"type": "string", "minLength": 1},
        "user": {"type": ["string", "null"], "description": "Ignored."},
        "time": {**_INT64, "description": "time of the last action read, UNIX ms"},
        "order": {**_ORDER, "description": "order of the last action read"},
    },
}
PROGRESS_OUT = {
    "type": "object",
    "required": ["table", "user", "time", "order"],
    "properties": {
        "table": {"type": "string"},
        "user": {"type": ["string", "null"]},
        "time": {"type": "integer"},
        "order": {"type": "integer"},
    },
}
TIME_RANGE = {
    "type": "object",
    "required": ["table", "startTime", "endTime"],
    "properties": {
        "table": {"type": "string", "minLength": 1},
        "startTime": {**_INT64, "description": "inclusive, UNIX ms"},
        "endTime": {**_INT64, "description": "exclusive, UNIX ms"},
    },
}
ACTION = {
    "type": "object",
    "required": ["table", "user", "action", "recordId", "time", "order"],
    "properties": {
        "table": {"type": "string"},
        "user": {"type": "string"},
        "action": {"type": "string", "enum": ["INSERT", "UPDATE", "DELETE"]},
        "recordId": {"type": "string", "description": "a UUID: 32 hex digits or dashed"},
        "jsonData": {"type": ["string", "null"], "description": "the record's fields as JSON"},
        "sampleTime": {"type": ["integer", "null"]},
        "time": {"type": "integer", "description": "UNIX ms"},
        "order": {
            "type": "integer",
            "description": "written: the writer's order; read: the action's log id, so that "
            "the last (time, order) read per table is where the next read goes on",
        },
        "source": {"type": ["string", "null"], "description": "read: local or remote"},
        "author": {"type": ["string", "null"]},
    },
}
_READ_BODY = {
    "type": ["object", "null"],
    "properties": {
        "maxCount": {**_ORDER, "description": "batch size; 0: no maximum"},
        "maxTime": {**_INT64, "type": ["integer", "null"]},
        "includeOwn": {"type": ["boolean", "null"]},
        "progress": {"type": ["array", "null"], "items": PROGRESS_IN},
        "includeTables": _TABLES,
        "excludeTables": _TABLES,
        "timeRangeRestrictions": {"type": ["array", "null"], "items": TIME_RANGE},
        "deviceId": {"type": "string", "minLength": 1, "description": "gateway extension"},
    },
}
_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
_ERRORS = {
    status: {
        "description": text,
        "content": {"application/json": {"schema": _ERROR}},
    }
    for status, text in {
        "400": "bad input (BAD_USER_INPUT, VALIDATION_FAILED)",
        "401": "no valid X-Auth-Token or Bearer token",
        "403": "no access to the project or user (FORBIDDEN, TABLE_NOT_ALLOWED)",
        "404": "unknown project",
        "409": "a write conflicts with the stored data",
        "413": "a limit was exceeded (LIMIT_EXCEEDED)",
    }.items()
}
_PARAMS = [
    {"name": "project", "in": "path", "required": True, "schema": {"type": "string"}},
    {
        "name": "user",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "whose data (omitted or empty: yours)",
    },
    {
        "name": "deviceId",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "minLength": 1},
        "description": "the calling device (gateway extension; required by unregister-push)",
    },
]
_EMPTY = {"200": {"description": "done (empty answer)"}, **_ERRORS}


def _op(summary: str, body: dict[str, Any] | None, ok: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["SenSeeAct"],
        "parameters": _PARAMS,
        "security": [{"authToken": []}, {"bearer": []}],
        "responses": ok,
    }
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return {"post": operation}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}


_TABLES_BODY = {
    "type": ["object", "null"],
    "properties": {"includeTables": _TABLES, "excludeTables": _TABLES},
}

PATHS: dict[str, dict[str, Any]] = {
    "/sync/project/{project}/read": _op(
        "New database actions after the progress, in log order (a bare array)",
        _READ_BODY,
        {**_json({"type": "array", "items": ACTION}), **_ERRORS},
    ),
    "/sync/project/{project}/get-read-stats": _op(
        "How many new actions a read would go through, and the latest time",
        _READ_BODY,
        {
            **_json(
                {
                    "type": "object",
                    "required": ["progress", "count", "latestTime"],
                    "properties": {
                        "progress": {"type": ["array", "null"], "items": PROGRESS_OUT},
                        "count": {"type": "integer"},
                        "latestTime": {"type": ["integer", "null"]},
                    },
                }
            ),
            **_ERRORS,
        },
    ),
    "/sync/project/{project}/get-progress": _op(
        "The time and order of the last action written per table",
        _TABLES_BODY,
        {**_json({"type": "array", "items": PROGRESS_OUT}), **_ERRORS},
    ),
    "/sync/project/{project}/write": _op(
        "Write database actions (validated, all or nothing, retries are no-ops)",
        {
            "type": "object",
            "required": ["actions"],
            "properties": {
                "actions": {"type": "array", "items": ACTION},
                "includeTables": _TABLES,
                "excludeTables": _TABLES,
                "deviceId": {"type": "string", "minLength": 1},
            },
        },
        _EMPTY,
    ),
    "/sync/project/{project}/watch": _op(
        "Wait up to GATEWAY_SENSEEACT_WATCH_SECONDS (60) for new actions",
        _READ_BODY,
        {
            **_json(
                {
                    "type": "object",
                    "required": ["resultCode"],
                    "properties": {
                        "resultCode": {"type": "string", "enum": ["OK", "TIMEOUT", "NO_DATA"]},
                        "actions": {"type": ["array", "null"], "items": ACTION},
                    },
                }
            ),
            **_ERRORS,
        },
    ),
    "/sync/project/{project}/register-push": _op(
        "Register a device's FCM token for push messages",
        {
            "type": "object",
            "required": ["fcmToken", "deviceId"],
            "properties": {
                "fcmToken": {"type": "string", "minLength": 1},
                "deviceId": {"type": "string", "minLength": 1},
                "includeTables": _TABLES,
                "excludeTables": _TABLES,
            },
        },
        _EMPTY,
    ),
    "/sync/project/{project}/unregister-push": _op(
        "Remove a device's push registration (?deviceId=)", None, _EMPTY
    ),
}
