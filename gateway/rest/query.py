"""Query-string parameters as the seeds document them, checked: a bad value is
``BAD_USER_INPUT`` (400) naming the parameter, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from gateway.errors import BadUserInput

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
MAX_INT = 2**31 - 1


def text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def boolean(request: Request, name: str, default: bool) -> bool:
    value = text(request, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise BadUserInput(f"{name} must be true or false", field=name)


def integer(request: Request, name: str, default: int) -> int:
    value = text(request, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadUserInput(f"{name} must be a whole number", field=name) from None
    if abs(number) > MAX_INT:
        raise BadUserInput(f"{name} is out of range", field=name)
    return number


def path_integer(request: Request, name: str) -> int:
    value = request.path_params[name]
    try:
        number = int(value)
    except ValueError:
        raise BadUserInput(f"{name} must be a whole number", field=name) from None
    if not 0 < number <= MAX_INT:  # ids are 32-bit, as GraphQL's Int
        raise BadUserInput(f"{name} is out of range", field=name)
    return number


def zulu(value: datetime | None, *, millis: bool = False) -> str | None:
    """A time in UTC with a ``Z``: to the second (CSPro, RegardingWork) or the millisecond
    (Census)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if millis:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
