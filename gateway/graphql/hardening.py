"""A schema that keeps its shape to itself: no "Did you mean ...?" hints when introspection is
off.

Suggestions name fields, arguments, types and enum values that exist, so they leak the schema
one guess at a time. graphql-core 3.3 can leave them out itself (``hide_suggestions``), but
Strawberry passes that flag neither to validation (``gateway/graphql/validation.py`` does) nor
to execution, where variables are coerced (here).
"""

from __future__ import annotations

from typing import Any

from gateway.graphql.execution import FlatLists


class ExecutionWithoutSuggestions(FlatLists):
    """Coerces variables (``Value 'X' does not exist in 'E' enum``) without suggestions, for
    queries, mutations and subscriptions alike."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})
