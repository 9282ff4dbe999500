"""Parsing and validation that a hostile document cannot turn against the gateway.

- The token limit is checked before graphql-core parses anything, with a quick count of the
  document's tokens: graphql-core's own parser would spend a tenth of a second getting to the
  limit of a 100,000-alias bomb. A document over the limit is not parsed at all.
- The operation limits (``gateway/graphql/limits.py``) are checked before graphql-core's own
  validation rules, some of which take time that grows with a document's expansion (fragments
  spreading fragments): a document over the limits never reaches them.
- Each distinct document is validated once per kind of caller (signed in or not, whose cost
  budgets differ) and the result is kept, like Strawberry's ``ValidationCache`` which this
  replaces; in production (introspection off) errors suggest no names either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.graphql.caching import MAX_CACHED_OPERATIONS, cacheable
from gateway.graphql.limits import OperationLimits, limit_rules, tokens_error

# The rules Strawberry's own validation appends to the execution context's.
_STRAWBERRY_RULES: tuple[type[ASTValidationRule], ...] = (
    MaybeNullValidationRule,
    OneOfInputValidationRule,
)
# GraphQL's lexical tokens, near enough to count them: names, numbers, strings (block strings
# first), the spread and the punctuators; comments are matched to be skipped.
_TOKEN = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n\r]*|\.\.\.'
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[_A-Za-z][_0-9A-Za-z]*|[!$&()\[\]{}:=@|]"
)
_PLACEHOLDERS = {
    kind: parse(f"{kind} {{ __typename }}", no_location=True)
    for kind in ("query", "mutation", "subscription")
}


def too_many_tokens(query: str, limit: int) -> bool:
    """Whether ``query`` has more than ``limit`` tokens. Counts in growing prefixes, so a
    bomb is told after a few thousand characters, not after all of them."""
    end = max(4096, 8 * limit)
    while True:
        tokens = _TOKEN.findall(query, 0, end)
        if sum(1 for token in tokens if token[0] != "#") > limit:
            return True
        if end >= len(query):
            return False
        end *= 2


def _placeholder(query: str) -> DocumentNode:
    """A parsed stand-in of the same kind (a transport may accept only subscriptions), so that
    Strawberry goes on to validation, which reports the refusal."""
    kind = re.match(r"\s*(query|mutation|subscription)?", query)
    return _PLACEHOLDERS[(kind and kind.group(1)) or "query"]


def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    limits: type[ASTValidationRule],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    refused = validate(schema, document, [limits])
    if refused:
        return refused
    return validate(
        schema, document, (*rules, *_STRAWBERRY_RULES), hide_suggestions=hide_suggestions
    )


_validate_cached = lru_cache(maxsize=2 * MAX_CACHED_OPERATIONS)(_validate)


def document_errors(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    limits: OperationLimits,
    *,
    anonymous: bool,
    hide_suggestions: bool,
    cache: bool = True,
) -> list[GraphQLError]:
    """What validation refuses in ``document``: the operation limits first (stricter for
    anonymous callers), then ``rules`` and Strawberry's own."""
    validated = _validate_cached if cache else _validate
    return validated(schema, document, rules, _rules_for(limits)[anonymous], hide_suggestions)


class Validation(SchemaExtension):
    """Token limit before parsing, operation limits before the rest of validation, each
    distinct document validated once per caller kind."""

    def __init__(self, limits: OperationLimits, hide_suggestions: bool) -> None:
        self.limits, self.hide_suggestions = limits, hide_suggestions
        self.refused: GraphQLError | None = None

    def on_operation(self) -> Iterator[None]:
        # What is left after the quick count (it may count a little differently) is still
        # bounded while parsing.
        self.execution_context.parse_options["max_tokens"] = self.limits.tokens
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query, limit = context.query, self.limits.tokens
        if context.graphql_document is None and query and too_many_tokens(query, limit):
            context.graphql_document = _placeholder(query)
            self.refused = tokens_error(self.limits.tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.refused is not None:
            context.pre_execution_errors = [self.refused]
        else:
            assert context.graphql_document is not None
            context.pre_execution_errors = document_errors(
                context.schema._schema,
                context.graphql_document,
                tuple(context.validation_rules),
                self.limits,
                anonymous=not getattr(context.context, "signed_in", False),
                hide_suggestions=self.hide_suggestions,
                cache=cacheable(context.query),
            )
        yield


@lru_cache(maxsize=8)
def _rules_for(limits: OperationLimits) -> dict[bool, type[ASTValidationRule]]:
    """One pair of rule classes per set of limits, so that validation stays cached."""
    return limit_rules(limits)
