"""SenSeeAct's request bodies and query parameters, checked into the domain's requests: a
wrong type, an out-of-range number or an unknown action is BAD_USER_INPUT (400), never a 500."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from gateway.errors import BadUserInput
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.cursor import INT64_MAX
from gateway.sync.reader import ReadFilter, TimeRange

INT32_MAX = 2**31 - 1  # SenSeeAct's order is a Java int


async def body(request: Request) -> dict[str, Any]:
    """The JSON object sent; an empty body is an empty object ("leave the entire content
    empty"), and so is ``null``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadUserInput("the request body is not valid JSON") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput("the request body must be a JSON object")
    return value


def user_param(request: Request) -> str | None:
    """``?user=``: omitted or empty, the caller."""
    return request.query_params.get("user") or None


def device_param(request: Request, content: dict[str, Any] | None = None) -> str | None:
    """The gateway's extension: which of the user's devices calls (``?deviceId=``, as
    unregister-push has it, or ``deviceId`` in the body)."""
    found = request.query_params.get("deviceId") or (content or {}).get("deviceId")
    if found is None:
        return None
    if not isinstance(found, str) or not found:
        raise BadUserInput("deviceId must be a non-empty string", field="deviceId")
    return found


def _whole(value: Any) -> int | None:
    """``value`` as an int when JSON gave a whole number: ``5`` or ``5.0`` (JSON Schema's
    integers include the latter), never a boolean."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def integer(content: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = content.get(name)
    if value is None:
        return None
    whole = _whole(value)
    if whole is None or not low <= whole <= high:
        raise BadUserInput(f"{name} must be a whole number from {low} to {high}", field=name)
    return whole


def _int(item: dict[str, Any], name: str, where: str, high: int = INT64_MAX) -> int:
    value = _whole(item.get(name))
    if value is None or not 0 <= value <= high:
        raise BadUserInput(f"{where}.{name} must be a whole number from 0 to {high}", field=where)
    return value


def flag(content: dict[str, Any], name: str) -> bool:
    value = content.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadUserInput(f"{name} must be true or false", field=name)
    return value


def names(content: dict[str, Any], name: str) -> list[str] | None:
    value = content.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadUserInput(f"{name} must be an array of table names", field=name)
    return value


def objects(content: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = content.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadUserInput(f"{name} must be an array of objects", field=name)
    return value


def _table(item: dict[str, Any], where: str) -> str:
    table = item.get("table")
    if not isinstance(table, str) or not table:
        raise BadUserInput(f"every {where} item needs its table", field=where)
    return table


def progress(content: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``progress``: table -> (time, order); ``user`` is ignored, as the seed says."""
    out: dict[str, tuple[int, int]] = {}
    for item in objects(content, "progress"):
        table = _table(item, "progress")
        if table in out:
            raise BadUserInput(f"progress names table {table!r} twice", field="progress")
        out[table] = (_int(item, "time", "progress"), _int(item, "order", "progress", INT32_MAX))
    return out


def read_filter(content: dict[str, Any]) -> ReadFilter:
    ranges = [
        TimeRange(
            _table(item, "timeRangeRestrictions"),
            _int(item, "startTime", "timeRangeRestrictions"),
            _int(item, "endTime", "timeRangeRestrictions"),
        )
        for item in objects(content, "timeRangeRestrictions")
    ]
    return ReadFilter(
        include_tables=names(content, "includeTables"),
        exclude_tables=names(content, "excludeTables"),
        time_ranges=ranges,
        include_own=flag(content, "includeOwn"),
    )


def _text(item: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadUserInput(f"actions.{name} must be a string", field="actions")
    return value


def actions(content: dict[str, Any]) -> list[IncomingAction]:
    if "actions" not in content or content["actions"] is None:
        raise BadUserInput("actions is required: an array of database actions", field="actions")
    out = []
    for item in objects(content, "actions"):
        kind = item.get("action")
        if kind not in ("INSERT", "UPDATE", "DELETE"):
            raise BadUserInput("actions.action must be INSERT, UPDATE or DELETE", field="actions")
        sample = item.get("sampleTime")
        out.append(
            IncomingAction(
                table=_table(item, "actions"),
                user=_text(item, "user", required=True) or "",
                action=ActionType(kind),
                record_id=_text(item, "recordId", required=True) or "",
                json_data=_text(item, "jsonData", required=False),
                time=_int(item, "time", "actions"),
                order=_int(item, "order", "actions", INT32_MAX),
                sample_time=None if sample is None else _int(item, "sampleTime", "actions"),
                source=None,  # "should be 'local', but is ignored"
                author=_text(item, "author", required=False),
            )
        )
    return out
