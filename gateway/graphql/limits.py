"""Operation limits, checked before anything runs: no single request may stall the gateway.

Like GraphQL Armor's and Apollo Router's, each limit names what it counts and is a setting:

- ``tokens``: lexical tokens of the document, counted while it is parsed (parsing stops at the
  limit, so a bomb of 100,000 aliases costs no more than the limit to refuse);
- ``depth``: nested selections, fragments expanded;
- ``aliases``: aliased fields, fragments expanded (each alias runs its field again);
- ``rootFields``: fields at the operation's root, fragments expanded;
- ``cost``: the fields a request may resolve, lists counted at their size: a field's size
  argument (``maxCount``, ``first``, ``perPage``) or, given by a variable or left at "no
  maximum", the most the gateway would return; lists without one count as ``LIST_SIZE`` items.
  ``__schema`` counts ``SCHEMA_COST`` and ``__type`` ``TYPE_COST``, whatever they select, so a
  client can introspect once but not hundreds of times in one request. Anonymous callers have a
  budget of their own: for them only introspection counts (at its flat prices, plus one per
  root field), since every other field refuses them before it does anything.

``gateway/graphql/validation.py`` checks ``tokens`` before parsing and the others before the
rest of validation, once per distinct document and caller kind. Fragment expansion is
memoized, so a document of fragments that spread fragments costs its size to check, not its
expansion.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    ValidationContext,
    get_named_type,
    get_nullable_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from gateway.errors import LimitExceeded
from gateway.settings import Settings
from gateway.sync.keyset import MAX_PAGE
from gateway.sync.runs.paging import MAX_PER_PAGE

LIST_SIZE = 20  # items assumed in a list without a size argument (tables, devices, names)
SCHEMA_COST, TYPE_COST = 1_000, 100
# graphql-core's message when parsing stops at ``max_tokens``.
_TOKENS = re.compile(r"Document contains more than (\d+) tokens\. Parsing aborted\.")

_META = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}
_META_COST = {"__schema": SCHEMA_COST, "__type": TYPE_COST}
# Where a field's size argument applies: the list it pages, one level down.
_SIZED_LISTS = frozenset({"actions", "edges", "data"})


@dataclass(frozen=True, slots=True)
class OperationLimits:
    tokens: int = 2_000
    depth: int = 15
    aliases: int = 15
    root_fields: int = 20
    cost: int = 250_000
    cost_anonymous: int = 2_000
    read_batch: int = 1_000  # what ``maxCount: 0`` (no maximum) returns at most
    timeout_seconds: float = 30.0
    response_bytes: int = 32 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> OperationLimits:
        return cls(
            tokens=settings.max_query_tokens,
            depth=settings.max_query_depth,
            aliases=settings.max_query_aliases,
            root_fields=settings.max_root_fields,
            cost=settings.max_query_cost,
            cost_anonymous=settings.max_query_cost_anonymous,
            read_batch=settings.max_read_batch,
            timeout_seconds=settings.request_timeout_seconds,
            response_bytes=settings.max_response_bytes,
        )


def limit_error(name: str, maximum: int, message: str, nodes: Any = None) -> GraphQLError:
    error = LimitExceeded(message, limit=name, max=maximum)
    return GraphQLError(message, nodes=nodes, extensions=error.extensions)


def as_limit_error(error: GraphQLError) -> GraphQLError | None:
    """graphql-core's syntax error for a document over the token limit, as the limit's error
    (a syntax error would close a graphql-transport-ws connection instead of answering)."""
    found = _TOKENS.search(error.message)
    if not isinstance(error, GraphQLSyntaxError) or found is None:
        return None
    return tokens_error(int(found.group(1)))


def tokens_error(maximum: int) -> GraphQLError:
    message = f"the operation has more than {maximum} tokens: put large inputs in variables"
    return limit_error("tokens", maximum, message)


@dataclass(slots=True)
class _Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0


@dataclass
class _Walk:
    """Measures one operation. Fragments are measured once per (fragment, type, size)."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    read_batch: int
    memo: dict[tuple[str, str, int | None], _Measure] = field(default_factory=dict)
    level_memo: dict[str, int] = field(default_factory=dict)
    meta_memo: dict[str, int] = field(default_factory=dict)
    expanding: set[str] = field(default_factory=set)

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        size: int | None,
    ) -> _Measure:
        total = _Measure()
        if selection_set is None:
            return total
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                part = self.field(selection, parent, size)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition else parent
                part = self.selections(selection.selection_set, scope, size)
            elif isinstance(selection, FragmentSpreadNode):
                part = self.spread(selection.name.value, size)
            else:  # pragma: no cover - the three kinds above are all there are
                continue
            total.depth = max(total.depth, part.depth)
            total.aliases += part.aliases
            total.cost += part.cost
        return total

    def fields_at(self, selection_set: SelectionSetNode) -> int:
        """Fields at one level, fragments expanded (memoized like ``spread``)."""
        count = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                count += 1
            elif isinstance(selection, InlineFragmentNode):
                count += self.fields_at(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self.expanding:
                    continue
                if name not in self.level_memo:
                    self.expanding.add(name)
                    self.level_memo[name] = self.fields_at(fragment.selection_set)
                    self.expanding.discard(name)
                count += self.level_memo[name]
        return count

    def meta_cost(self, selection_set: SelectionSetNode) -> int:
        """The introspection at the root of an operation, at its flat prices (memoized like
        ``spread``)."""
        cost = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                cost += _META_COST.get(selection.name.value, 0)
            elif isinstance(selection, InlineFragmentNode):
                cost += self.meta_cost(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self.expanding:
                    continue
                if name not in self.meta_memo:
                    self.expanding.add(name)
                    self.meta_memo[name] = self.meta_cost(fragment.selection_set)
                    self.expanding.discard(name)
                cost += self.meta_memo[name]
        return cost

    def spread(self, name: str, size: int | None) -> _Measure:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.expanding:  # unknown or cyclic: validation says so
            return _Measure()
        scope = self.schema.get_type(fragment.type_condition.name.value)
        key = (name, getattr(scope, "name", ""), size)
        if key not in self.memo:
            self.expanding.add(name)
            self.memo[key] = self.selections(fragment.selection_set, scope, size)
            self.expanding.discard(name)
        return self.memo[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, size: int | None) -> _Measure:
        name = node.name.value
        aliases = 1 if node.alias is not None and node.alias.value != name else 0
        definition = _META.get(name) or (
            parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        )
        if definition is None:  # __typename, or unknown (validation reports that)
            return _Measure(1, aliases, 1)
        child_type = get_named_type(definition.type)
        is_list = isinstance(get_nullable_type(definition.type), GraphQLList)
        inner = self.selections(node.selection_set, child_type, self.size(node, definition))
        if name in _META:  # a flat price, whatever it selects (its depth and aliases count)
            return _Measure(1 + inner.depth, aliases + inner.aliases, _META_COST[name])
        times = 1
        if is_list:
            times = size if size is not None and name in _SIZED_LISTS else LIST_SIZE
        return _Measure(1 + inner.depth, aliases + inner.aliases, 1 + times * inner.cost)

    def size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The page size a field's arguments ask for (its default when not given); the most
        it may be when a variable gives it, or when it means "no maximum" (``maxCount: 0``)."""
        sizes = (("maxCount", self.read_batch), ("first", MAX_PAGE), ("perPage", MAX_PER_PAGE))
        for name, most in sizes:
            if name not in definition.args:
                continue
            given = next((a.value for a in node.arguments or () if a.name.value == name), None)
            if given is None:
                asked = definition.args[name].default_value
            elif isinstance(given, IntValueNode):
                asked = int(given.value)
            else:
                return most
            return most if not isinstance(asked, int) or asked <= 0 else min(asked, most)
        return None


def limits_rule(limits: OperationLimits, *, anonymous: bool) -> type[ASTValidationRule]:
    """A validation rule holding ``limits``, with the cost budget of one kind of caller."""
    budget = limits.cost_anonymous if anonymous else limits.cost

    class OperationLimitsRule(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.walk = _Walk(
                context.schema,
                {
                    d.name.value: d
                    for d in context.document.definitions
                    if isinstance(d, FragmentDefinitionNode)
                },
                limits.read_batch,
            )

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
            root = self.context.schema.get_root_type(node.operation)
            measure = self.walk.selections(node.selection_set, root, None)
            roots = self.walk.fields_at(node.selection_set)
            cost = measure.cost
            if anonymous:  # only introspection runs for them; any other field is refused at once
                cost = roots + self.walk.meta_cost(node.selection_set)
            checks = (
                ("depth", measure.depth, limits.depth, "selections nested {n} deep"),
                ("aliases", measure.aliases, limits.aliases, "{n} aliased fields"),
                ("rootFields", roots, limits.root_fields, "{n} fields at its root"),
                ("cost", cost, budget, "an estimated cost of {n}"),
            )
            for name, found, maximum, what in checks:
                if found > maximum:  # the first limit exceeded is the one to fix
                    message = f"the operation has {what.format(n=found)}; at most {maximum}"
                    if name == "cost":
                        message += " (lists count at their size: ask for smaller pages)"
                    self.report_error(limit_error(name, maximum, message, node))
                    break
            return self.SKIP

    OperationLimitsRule.__name__ = "AnonymousLimits" if anonymous else "OperationLimits"
    return OperationLimitsRule


def limit_rules(limits: OperationLimits) -> dict[bool, type[ASTValidationRule]]:
    """The rules for signed-in (False) and anonymous (True) callers: made once per schema, so
    that validation stays cached per document."""
    return {anonymous: limits_rule(limits, anonymous=anonymous) for anonymous in (False, True)}


class ResponseBudget:
    """What is left of one answer's record data (``GATEWAY_MAX_RESPONSE_BYTES``): pages of the
    log end early to fit it (``hasMore``), so several aliases cannot build a huge answer."""

    def __init__(self, max_bytes: int) -> None:
        self.left = max_bytes
        # Aliases of one answer run at once: each reads what is left once the others spent.
        self.turn = asyncio.Lock()

    def spend(self, amount: int) -> None:
        self.left = max(0, self.left - amount)


_BUDGET: ContextVar[ResponseBudget | None] = ContextVar("gateway_response_budget", default=None)


def response_budget() -> ResponseBudget | None:
    """The running operation's budget (None outside one: a subscription's later messages)."""
    return _BUDGET.get()


@asynccontextmanager
async def operation_budget(
    timeout_seconds: float, max_response_bytes: int, *, stream: bool = False
) -> AsyncIterator[None]:
    """The runtime budgets of one operation: a query or mutation still running after
    ``timeout_seconds`` is stopped (its transaction rolls back) with ``LIMIT_EXCEEDED``; every
    operation's answer carries at most ``max_response_bytes`` of record data. A ``stream``
    (subscription) runs as long as it is wanted: its messages have budgets."""
    _BUDGET.set(ResponseBudget(max_response_bytes))
    try:
        if stream:
            yield
            return
        try:
            async with asyncio.timeout(timeout_seconds):
                yield
        except TimeoutError as exc:
            raise LimitExceeded(
                f"the operation took longer than {timeout_seconds:g} s and was stopped; "
                "nothing it would have written was kept",
                limit="timeout",
                max=timeout_seconds,
            ) from exc
    finally:
        # Each operation runs in a task (and so a context) of its own; if another
        # extension failed to start, this one is closed later, from elsewhere.
        _BUDGET.set(None)


class RequestBudget(SchemaExtension):
    """``operation_budget`` around each operation's execution."""

    def __init__(self, timeout_seconds: float, max_response_bytes: int) -> None:
        self.timeout_seconds, self.max_response_bytes = timeout_seconds, max_response_bytes

    async def on_execute(self) -> AsyncIterator[None]:
        stream = self.execution_context.operation_type is OperationType.SUBSCRIPTION
        async with operation_budget(self.timeout_seconds, self.max_response_bytes, stream=stream):
            yield
