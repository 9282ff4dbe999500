"""Lists of plain objects completed in one loop.

graphql-core completes every field of every item of a list one by one: a page of 1,000 actions
is 11,000 resolver calls, each through Strawberry's wrapper, ``complete_value`` and a path entry,
which made GraphQL most of a pull's cost. When the items of a list are objects whose selected
fields are all plain attributes (Strawberry's default resolver, no arguments) of scalar or enum
type (or plain methods of the type, like ``DatabaseAction.data``), or objects selected the same
way (a connection's edges and their nodes), and the selection
uses no ``@defer`` or ``@stream``, ``FlatLists`` builds the list's values itself: per item,
each field's attribute coerced by its type, as graphql-core would.
Everything else (other resolvers, lists within items, a null in a non-null field, a value its type
refuses) goes through graphql-core's own completion, which reports errors as it always does; the
attributes are read again from the same objects, so doing so has no effect of its own.
Each selection's rows are built by a function generated for it once (``compiled.py``).
``tests/api/test_flat_lists.py`` checks that both ways give the same answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
)
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

from gateway.graphql.compiled import Builder, Column, Fallback, Plan, builder

ENABLED = True  # off: graphql-core completes every list (the differential test compares)


class FlatLists(StrawberryGraphQLCoreExecutionContext):
    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if ENABLED and type(result) is list and not _middleware(self):
            flat = self._flat_columns(return_type, field_details_list, path)
            if flat is not None:
                nullable, build = flat
                try:
                    return _complete_rows(result, nullable, build, info)
                except Fallback:
                    pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _flat_columns(
        self, return_type: GraphQLList[GraphQLOutputType], field_details_list: Any, path: Path
    ) -> tuple[bool, Builder] | None:
        item_type = return_type.of_type
        nullable = not isinstance(item_type, GraphQLNonNull)
        if isinstance(item_type, GraphQLNonNull):
            item_type = item_type.of_type
        if not isinstance(item_type, GraphQLObjectType):
            return None
        if self.get_stream_usage(field_details_list, path) is not None:
            return None
        plan = self._plan(item_type, field_details_list)
        return None if plan is None else (nullable, builder(plan))

    def _plan(self, object_type: GraphQLObjectType, field_details_list: Any) -> Plan | None:
        """How to build an object's value from its attributes; None when one of its selected
        fields is not plain (a resolver, arguments, a list, something deferred)."""
        grouped, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
        if new_defer_usages:
            return None
        columns: list[Column] = []
        for key, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                columns.append((key, name, _constant(object_type.name), _same, True, None))
                continue
            field = object_type.fields.get(name)
            if field is None or any(d.node.arguments for d in details):
                return None
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if definition is None:
                return None
            read: Callable[[Any], Any] | None = attrgetter(definition.python_name)
            if not getattr(field.resolve, "_is_default", False):
                read = _plain_method(definition)
                if read is None:
                    return None  # a resolver that needs more than the object
            field_type = field.type
            non_null = isinstance(field_type, GraphQLNonNull)
            if non_null:
                field_type = field_type.of_type
            if isinstance(field_type, (GraphQLScalarType, GraphQLEnumType)):
                columns.append((key, name, read, field_type.coerce_output_value, non_null, None))
            elif isinstance(field_type, GraphQLObjectType):
                nested = self._plan(field_type, details)
                if nested is None:
                    return None
                columns.append((key, name, read, None, non_null, nested))
            else:
                return None  # a list or an abstract type
        return object_type, columns


def _middleware(context: FlatLists) -> bool:
    """Whether resolvers are wrapped in middleware (whose effects this path would skip)."""
    manager = context.middleware_manager
    return manager is not None and bool(manager.middlewares)


def _constant(value: str) -> Callable[[Any], Any]:
    return lambda _: value


def _same(value: Any) -> Any:
    return value


def _plain_method(definition: Any) -> Callable[[Any], Any] | None:
    """A field's resolver when it is a plain method of the type: synchronous, no arguments,
    nothing but ``self`` (no info, no root), no field extensions or permissions."""
    resolver = getattr(definition, "base_resolver", None)
    if (
        resolver is None
        or resolver.is_async
        or resolver.arguments
        or definition.extensions
        or getattr(definition, "permission_classes", None)
        or resolver.self_parameter is None
        or len(inspect.signature(resolver.wrapped_func).parameters) != 1
    ):
        return None
    method: Callable[[Any], Any] = resolver.wrapped_func
    return method


def _complete_rows(
    items: list[Any], nullable: bool, build: Builder, info: GraphQLResolveInfo
) -> list[dict[str, Any] | None]:
    try:
        if nullable:
            return [None if item is None else build(item, info) for item in items]
        return [_refused() if item is None else build(item, info) for item in items]
    except Fallback:
        raise
    except Exception as exc:  # a value its type refuses (or a null item): graphql-core reports it
        raise Fallback from exc


def _refused() -> Any:
    """A null item of a list of non-null items: graphql-core reports it."""
    raise Fallback
