"""Relay-style connections, shared by every list that grows without bound: ``Connection[T]``
is named ``TConnection`` in the schema (``RecordConnection``, ...), its edges ``TEdge``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

import strawberry

T = TypeVar("T")


@strawberry.type(description="Where a page ends, and whether more follow.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow: ask again with after: endCursor."
    )
    end_cursor: str | None = strawberry.field(
        description="The last item's cursor (null on an empty page): give it as after to continue."
    )


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(
        description="Opaque: give it as after to continue after this item."
    )
    node: T = strawberry.field(description="The item.")


@strawberry.type(
    description="One page of a list that may be long: its items in order, and how to get the "
    "next page (first and after)."
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's items, in order.")
    page_info: PageInfo = strawberry.field(description="Whether more follow, and from where.")

    @classmethod
    def of(cls, nodes: Iterable[tuple[str, T]], *, has_next_page: bool) -> Connection[T]:
        """A page of (cursor, node) pairs; ``endCursor`` is the last one's cursor."""
        edges = [Edge(cursor=cursor, node=node) for cursor, node in nodes]
        end = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end))
