"""A schema that keeps its shape to itself: no introspection, no "Did you mean ...?" hints.

Suggestions name fields, arguments, types and enum values that exist, so they leak the schema
one guess at a time; they are hidden whenever introspection is off. graphql-core 3.3 can leave
them out itself (``hide_suggestions``), but Strawberry passes that flag neither to validation
nor to execution (where variables are coerced), so both are wired here.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.graphql.caching import MAX_CACHED_OPERATIONS

# The rules Strawberry's own validation appends to the execution context's.
_STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)


@lru_cache(maxsize=MAX_CACHED_OPERATIONS)
def _validate_without_suggestions(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
) -> list[GraphQLError]:
    return validate(schema, document, (*rules, *_STRAWBERRY_RULES), hide_suggestions=True)


class ValidationWithoutSuggestions(SchemaExtension):
    """Validates (once per distinct document, like Strawberry's ``ValidationCache``, which it
    replaces) with graphql-core's ``hide_suggestions``. Setting ``pre_execution_errors`` tells
    Strawberry that validation has been done."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        context.pre_execution_errors = _validate_without_suggestions(
            context.schema._schema, context.graphql_document, tuple(context.validation_rules)
        )
        yield


class ExecutionWithoutSuggestions(StrawberryGraphQLCoreExecutionContext):
    """Coerces variables (``Value 'X' does not exist in 'E' enum``) without suggestions, for
    queries, mutations and subscriptions alike."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        return super().build(*args, **{**kwargs, "hide_suggestions": True})
