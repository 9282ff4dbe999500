"""Queries and mutations a client sent before, run without Strawberry's per-request pipeline.

Strawberry runs every request through its extensions: each hook of each extension is a
context manager, the document is hashed again to find its cached validation, the token limit
is counted again. For `{ me { id } }` that was 170 µs of the 200 µs an operation cost in the
process, against 37 µs for graphql-core's own execution.

So each distinct request (document, operation name, whether the caller signed in) is looked at
once, the way the pipeline would: within the token limit, parsed, validated with the same rules
and operation limits (``validation.py``), no text that cannot be stored (``inputs.py``), no
introspection and no directive but ``@skip``/``@include``. A request that passes all of that is
a plan; later requests with it run only what depends on them: their variables' text is checked,
graphql-core executes the operation under the same budgets (``limits.operation_budget``), and
errors get their codes as ``ErrorCodes`` gives them. Everything else (a refused document, a
persisted query, a subscription) takes Strawberry's pipeline, which reports it as always.

``tests/api/test_quick.py`` runs operations both ways and compares the answers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationType,
    Visitor,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    visit,
)
from strawberry import Schema
from strawberry.execution import optimized_is_awaitable
from strawberry.http import GraphQLRequestData
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperationType
from strawberry.utils.await_maybe import await_maybe

from gateway.errors import GatewayError
from gateway.graphql.caching import MAX_CACHED_OPERATIONS, cacheable
from gateway.graphql.context import Context
from gateway.graphql.errors import code_errors, internal_error
from gateway.graphql.inputs import unstorable, unstorable_literals
from gateway.graphql.limits import OperationLimits, operation_budget
from gateway.graphql.validation import document_errors, too_many_tokens

logger = logging.getLogger("gateway.graphql")

ENABLED = True  # off: every request takes Strawberry's pipeline (the differential test compares)

_KINDS = {
    OperationType.QUERY: StrawberryOperationType.QUERY,
    OperationType.MUTATION: StrawberryOperationType.MUTATION,
}
_PLAIN_DIRECTIVES = frozenset({"skip", "include"})
_INTROSPECTION = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class _Plan:
    document: DocumentNode
    kind: StrawberryOperationType


class QuickOperations:
    """The plans of one schema and its limits."""

    def __init__(self, schema: Schema, limits: OperationLimits, *, hide_suggestions: bool) -> None:
        self.schema, self.limits, self.hide_suggestions = schema, limits, hide_suggestions
        self._executor = execution_context_class_kwargs(schema.execution_context_class)
        self._plans: OrderedDict[tuple[str, str | None, bool], _Plan | None] = OrderedDict()

    @property
    def planned(self) -> int:
        """How many of the requests kept run as plans (the others take the pipeline)."""
        return sum(plan is not None for plan in self._plans.values())

    async def execute(
        self,
        request: GraphQLRequestData,
        context: Context,
        allowed: Collection[StrawberryOperationType],
    ) -> ExecutionResult | None:
        """The request's result, or None when it must take Strawberry's pipeline."""
        query = request.query
        if not ENABLED or query is None or not cacheable(query):
            return None
        plan = self._plan(query, request.operation_name, not context.signed_in)
        if plan is None or plan.kind not in allowed or unstorable(request.variables):
            return None
        try:
            async with operation_budget(self.limits.timeout_seconds, self.limits.response_bytes):
                result = await await_maybe(
                    execute(
                        self.schema._schema,
                        plan.document,
                        variable_values=request.variables,
                        operation_name=request.operation_name,
                        context_value=context,
                        is_awaitable=optimized_is_awaitable,
                        operation_extensions=request.extensions,
                        **self._executor,
                    )
                )
        except GraphQLError as exc:
            result = PreExecutionError(data=None, errors=[exc])
        except GatewayError as exc:  # the budget's timeout: as Strawberry's pipeline reports it
            error = GraphQLError(str(exc), original_error=exc)
            result = PreExecutionError(data=None, errors=[error])
        except Exception:
            logger.exception("unexpected error running %s", request.operation_name or "a query")
            result = PreExecutionError(data=None, errors=[internal_error()])
        code_errors(result)
        return ExecutionResult(data=result.data, errors=result.errors)

    def _plan(self, query: str, operation_name: str | None, anonymous: bool) -> _Plan | None:
        key = (query, operation_name, anonymous)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = self._build(query, operation_name, anonymous)
        self._plans[key] = plan
        if len(self._plans) > MAX_CACHED_OPERATIONS:
            self._plans.popitem(last=False)
        return plan

    def _build(self, query: str, operation_name: str | None, anonymous: bool) -> _Plan | None:
        if too_many_tokens(query, self.limits.tokens):
            return None
        try:
            document = parse(query, max_tokens=self.limits.tokens)
        except GraphQLError:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation not in _KINDS or not _plain(document):
            return None
        if unstorable_literals(document, query):
            return None
        errors = document_errors(
            self.schema._schema,
            document,
            tuple(specified_rules),
            self.limits,
            anonymous=anonymous,
            hide_suggestions=self.hide_suggestions,
        )
        if errors:
            return None
        return _Plan(document, _KINDS[operation.operation])


class _Unplain(Visitor):
    """Finds what a plan does not cover: introspection, and directives other than
    ``@skip``/``@include`` (``@defer``, ``@stream``, unknown ones for validation to report)."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        return self._stop_if(node.name.value in _INTROSPECTION)

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        return self._stop_if(node.name.value not in _PLAIN_DIRECTIVES)

    def _stop_if(self, found: bool) -> Any:
        if found:
            self.found = True
            return self.BREAK
        return None


def _plain(document: DocumentNode) -> bool:
    visitor = _Unplain()
    visit(document, visitor)
    return not visitor.found
