"""Text the gateway can store the same way on both databases.

PostgreSQL refuses NUL in text and unpaired UTF-16 surrogates (``"\\ud800"`` in JSON) in any
UTF-8 column, while SQLite stores both: such input would fail on one database (as an internal
error) and poison a migration from the other. Every string a request carries, in its variables
or written into the document, is checked once before the operation runs, so no resolver has to.
(Strings inside ``jsonData`` are checked by the writer, which parses it.)
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from gateway.errors import BadUserInput
from gateway.graphql.caching import MAX_CACHED_OPERATIONS, cacheable
from gateway.sync.validation import UNSTORABLE

MESSAGE = "text must not contain NUL characters or unpaired surrogates (\\ud800-\\udfff)"


def unstorable(value: Any) -> bool:
    """Whether any string in ``value`` (a JSON-like structure) has what no database stores."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class _Strings(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.bad = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if UNSTORABLE.search(node.value):
            self.bad = True
            return self.BREAK
        return None


def _document_unstorable(document: DocumentNode) -> bool:
    strings = _Strings()
    visit(document, strings)
    return strings.bad


_document_unstorable_cached = lru_cache(maxsize=MAX_CACHED_OPERATIONS)(_document_unstorable)


def unstorable_literals(document: DocumentNode, query: str | None) -> bool:
    check = _document_unstorable_cached if cacheable(query) else _document_unstorable
    return check(document)


class StorableText(SchemaExtension):
    """Refuses, with ``BAD_USER_INPUT``, a request whose variables or string literals hold NUL
    or unpaired surrogates. It adds to validation's errors, so it must come after the extension
    that validates (which leaves them set: Strawberry then reports them and runs nothing)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        errors = context.pre_execution_errors
        if not errors and (
            unstorable(context.variables)
            or (document is not None and unstorable_literals(document, context.query))
        ):
            error = BadUserInput(MESSAGE)
            context.pre_execution_errors = [GraphQLError(MESSAGE, extensions=error.extensions)]
        yield
