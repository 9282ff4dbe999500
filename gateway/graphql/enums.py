"""The schema's enums, made from the domain's own, with a description for each value."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

import strawberry

E = TypeVar("E", bound=type[Enum])


def described_enum(
    cls: E, *, description: str, values: Mapping[str, str], name: str | None = None
) -> E:
    """``cls`` as a GraphQL enum; ``values`` describes every member, by name (a member without
    a description, or a description of no member, fails at import)."""
    wrapped = strawberry.enum(cls, name=name, description=description)
    definition = wrapped.__strawberry_definition__  # type: ignore[attr-defined]
    names = {value.name for value in definition.values}
    if names != set(values):
        raise ValueError(f"{definition.name}: describe exactly {sorted(names)}")
    for value in definition.values:
        value.description = values[value.name]
    return wrapped
