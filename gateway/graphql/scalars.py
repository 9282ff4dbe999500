"""Custom scalars, each with the specification it follows (``@specifiedBy``), so that code
generators and clients know how to map them (``clients/codegen/codegen.ts``)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY

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
    description="A 64-bit signed integer, e.g. a UNIX time in milliseconds (GraphQL's Int is "
    "32-bit). Answers carry it as a JSON number; arguments and variables take a number or, "
    "for values JavaScript cannot hold exactly (beyond 2^53), a string of digits.",
    specified_by_url="https://ibm.github.io/graphql-specs/custom-scalars/long.html",
    serialize=int,
    parse_value=_parse_long,
)

# Strawberry's own DateTime and JSON, with the same conversions, described for users.
DateTimeDefinition = dataclasses.replace(
    DEFAULT_SCALAR_REGISTRY[datetime],
    description="A date and time with its UTC offset, as an RFC 3339 (ISO 8601) string, e.g. "
    '"2024-05-01T08:30:00.123456+00:00". Answers are in UTC.',
    specified_by_url="https://scalars.graphql.org/andimarek/date-time",
)
JSONDefinition = dataclasses.replace(
    DEFAULT_SCALAR_REGISTRY[JSON],
    description="Any JSON value: an object, array, string, number, boolean or null, carried "
    "as JSON itself (not as a string).",
)

SCALARS = {Long: LongDefinition, datetime: DateTimeDefinition, JSON: JSONDefinition}
