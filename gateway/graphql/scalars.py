"""Custom scalars. ``DateTime`` is Strawberry's own (ISO 8601) for ``datetime`` fields."""

from __future__ import annotations

from typing import NewType

import strawberry

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_long(value: object) -> int:
    # Strings are accepted because JavaScript clients cannot hold every 64-bit integer exactly.
    if isinstance(value, bool):
        raise ValueError("Long cannot represent a boolean")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError as exc:
            raise ValueError(f"Long cannot represent {value!r}") from exc
    if not isinstance(value, int):
        raise ValueError(f"Long cannot represent {value!r}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("Long is out of the 64-bit range")
    return value


Long = NewType("Long", int)

# Registered through ``StrawberryConfig.scalar_map`` (see ``SCALARS``).
LongDefinition = strawberry.scalar(
    name="Long",
    description="A 64-bit integer, e.g. a UNIX time in milliseconds (GraphQL's Int is 32-bit).",
    serialize=int,
    parse_value=_parse_long,
)

SCALARS = {Long: LongDefinition}
