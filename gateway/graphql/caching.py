"""Parse and validate each distinct operation once: clients send the same few again and again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import ParserCache

MAX_CACHED_OPERATIONS = 512
# Longer documents (large inline literals, rarely sent twice) are parsed and checked each time
# rather than kept: 512 cached documents of the body limit's size (10 MiB) would pin gigabytes.
MAX_CACHED_QUERY_CHARS = 64 * 1024


def cacheable(query: str | None) -> bool:
    return query is not None and len(query) <= MAX_CACHED_QUERY_CHARS


class ParseOnce(ParserCache):
    """Strawberry's ParserCache, except that a document that does not parse is left to
    Strawberry's own parser. The cache raises its syntax error outside the operation's error
    handling, so the error would reach the client without its ``extensions.code``."""

    def __init__(self) -> None:
        super().__init__(maxsize=MAX_CACHED_OPERATIONS)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and cacheable(context.query) and context.graphql_document is None:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = self.cached_parse_document(
                    context.query, **context.parse_options
                )
        yield
