"""Checks of incoming actions against their table's declaration. Pure functions: the writer
adds what needs the database (does the record exist, is this a duplicate)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.sync.actions import ActionType
from gateway.sync.tables import LOCAL_TIME, UTC_TIME, FieldSpec, FieldType, TableSpec

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_DASHED = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)


class ActionProblem(ValueError):
    """Why one action cannot be written."""


class ActionTooLarge(ActionProblem):
    """An action over one of the data limits (``LIMIT_EXCEEDED`` rather than invalid)."""


@dataclass(frozen=True, slots=True)
class DataLimits:
    """What one record may hold (GATEWAY_MAX_RECORD_BYTES, GATEWAY_MAX_JSON_DEPTH)."""

    record_bytes: int = 256 * 1024
    json_depth: int = 32


DEFAULT_LIMITS = DataLimits()


# NUL and unpaired surrogates: text PostgreSQL refuses and SQLite keeps (see graphql/inputs).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def normalize_record_id(value: str) -> str:
    """SenSeeAct's form: 32 lower-case hex digits. The dashed UUID form is accepted too."""
    if _HEX32.fullmatch(value):
        return value.lower()
    if _DASHED.fullmatch(value):
        return value.replace("-", "").lower()
    raise ActionProblem(f"recordId {value!r} is not a UUID (32 hex digits, dashes allowed)")


def parse_data(
    action: ActionType,
    json_data: str | None,
    spec: TableSpec,
    record_id: str,
    user: str,
    limits: DataLimits = DEFAULT_LIMITS,
) -> dict[str, Any] | None:
    """The jsonData object of an INSERT or UPDATE, checked field by field; None for DELETE."""
    if action is ActionType.DELETE:
        if json_data not in (None, ""):
            raise ActionProblem("a DELETE carries no jsonData")
        return None
    if json_data is None:
        raise ActionProblem(f"an {action.value} needs jsonData")
    size = len(json_data.encode("utf-8", "surrogatepass"))
    if size > limits.record_bytes:
        raise ActionTooLarge(f"jsonData has {size} bytes; at most {limits.record_bytes}")
    try:
        data = json.loads(json_data)
    except RecursionError as exc:
        raise ActionTooLarge(f"jsonData nests deeper than {limits.json_depth} levels") from exc
    except ValueError as exc:
        raise ActionProblem(f"jsonData is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ActionProblem("jsonData must be a JSON object")
    if not _plainly_storable(json_data, limits.json_depth):
        _check_content(data, limits.json_depth)
    # Every record carries its id and user (SenSeeAct's jsonData does); they must agree.
    if "id" in data and _record_id_of(data["id"]) != record_id:
        raise ActionProblem(f"jsonData.id {data['id']!r} differs from recordId")
    if "user" in data and data["user"] != user:
        raise ActionProblem(f"jsonData.user {data['user']!r} differs from the action's user")
    fields = {f.name: f for f in spec.fields}
    problems = [
        problem
        for name, value in data.items()
        if name not in ("id", "user")
        if (problem := _field_problem(fields.get(name), name, value))
    ]
    if action is ActionType.INSERT:
        missing = [f.name for f in spec.fields if f.required and data.get(f.name) is None]
        if missing:
            problems.append(f"required field(s) missing: {', '.join(missing)}")
    if problems:
        raise ActionProblem("; ".join(problems))
    return data


def _plainly_storable(text: str, max_depth: int) -> bool:
    """Whether ``text``, parsed, certainly passes ``_check_content`` (the usual flat record,
    without walking it): a parsed string's characters are the text's own or come from its
    escapes, of which only ``\\u`` makes a NUL or a surrogate; and each level of nesting
    needs a bracket of its own (brackets inside strings only make the count larger)."""
    return (
        "\\u" not in text
        and UNSTORABLE.search(text) is None
        and text.count("{") + text.count("[") <= max_depth
    )


def _check_content(data: dict[str, Any], max_depth: int) -> None:
    """Nesting within the limit, and no text a database cannot store (PostgreSQL refuses NUL
    and unpaired surrogates in JSON; SQLite would keep them)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise ActionTooLarge(f"jsonData nests deeper than {max_depth} levels")
            values = item.values() if isinstance(item, dict) else item
            stack.extend((value, depth + 1) for value in values)
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
        elif isinstance(item, str) and UNSTORABLE.search(item):
            raise ActionProblem("jsonData holds a NUL character or an unpaired surrogate")


def _record_id_of(value: Any) -> str | None:
    try:
        return normalize_record_id(value) if isinstance(value, str) else None
    except ActionProblem:
        return None


def _field_problem(field: FieldSpec | None, name: str, value: Any) -> str | None:
    if field is None:
        return f"field {name!r} is not declared in the table"
    if value is None:
        return f"field {name!r} is required" if field.required else None
    if not _matches(field.type, value):
        return f"field {name!r} must be {field.type.value}, got {json.dumps(value)[:60]}"
    return None


def _matches(kind: FieldType, value: Any) -> bool:
    match kind:
        case FieldType.STRING:
            return isinstance(value, str)
        case FieldType.INT:
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and _INT64[0] <= value <= _INT64[1]
            )
        case FieldType.FLOAT:
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        case FieldType.BOOLEAN:
            return isinstance(value, bool)
        case FieldType.DATETIME:
            return isinstance(value, str) and _parse_datetime(value) is not None
        case FieldType.JSON:
            return True


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def sample_time(spec: TableSpec, data: Mapping[str, Any] | None) -> int | None:
    """SenSeeAct's sampleTime: ``utcTime`` when the table has it, else ``localTime`` read as a
    time in UTC; None for tables without either (or data without them)."""
    if data is None:
        return None
    if spec.has_utc_time and isinstance(data.get(UTC_TIME), int):
        return data[UTC_TIME]
    if spec.has_local_time and isinstance(data.get(LOCAL_TIME), str):
        local = _parse_datetime(data[LOCAL_TIME])
        if local is not None:
            return int(local.replace(tzinfo=UTC).timestamp() * 1000)
    return None


def check_order(order: int) -> None:
    if not _INT32[0] <= order <= _INT32[1] or order < 0:
        raise ActionProblem("order must be between 0 and 2147483647")


def check_labels(source: str | None, author: str | None) -> None:
    """SenSeeAct's free-text labels of an action, within their columns."""
    for name, value, most in (("source", source, 32), ("author", author, 255)):
        if value is not None and len(value) > most:
            raise ActionProblem(f"{name} has {len(value)} characters; at most {most}")


def check_time(time: int) -> None:
    if time < 0:
        raise ActionProblem("time must be a UNIX time in milliseconds (not negative)")


def record_key(spec: TableSpec, record_id: str, data: Mapping[str, Any] | None) -> str:
    """A record's key: its keyField's value when the table declares one, else its recordId."""
    if spec.key_field and data is not None and data.get(spec.key_field) is not None:
        value = data[spec.key_field]
        return (value if isinstance(value, str) else json.dumps(value))[:255]
    return record_id
