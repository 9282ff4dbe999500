"""Relay-style connections, shared by every list that grows without bound: ``Connection[T]``
is named ``TConnection`` in the schema (``RecordConnection``, ...), its edges ``TEdge``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

import strawberry

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def of(cls, nodes: Iterable[tuple[str, T]], *, has_next_page: bool) -> Connection[T]:
        """A page of (cursor, node) pairs; ``endCursor`` is the last one's cursor."""
        edges = [Edge(cursor=cursor, node=node) for cursor, node in nodes]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))
