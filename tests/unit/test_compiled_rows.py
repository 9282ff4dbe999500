"""The generated row builders (gateway/graphql/compiled.py) answer exactly as graphql-core's own
completion, also for the values a type refuses: hypothesis fills a list of objects with any
value in every field (nulls, out-of-range integers, strings where numbers belong, foreign enum
members, objects of another type) and the same operation runs with the fast lists on and off.
The answers, errors included, must be byte-identical."""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from typing import Any

import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.schema.config import StrawberryConfig

from gateway.graphql import compiled, execution
from gateway.graphql.execution import FlatLists
from gateway.graphql.scalars import SCALARS, Long


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Other(enum.Enum):
    RED = "red"


@strawberry.type
class Inner:
    name: str
    size: int | None


@strawberry.type
class Row:
    text: str
    maybe_text: str | None
    count: int
    maybe_count: int | None
    big: Long
    flag: bool | None
    ratio: float | None
    color: Color
    maybe_color: Color | None
    inner: Inner | None

    @strawberry.field
    def shout(self) -> str:
        return self.text.upper() if isinstance(self.text, str) else self.text


@dataclass
class _Stranger:  # not a Row: its fields are never read as one
    text: str = "x"


_ROWS: list[Any] = []


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row]:
        return _ROWS

    @strawberry.field
    def maybe_rows(self) -> list[Row | None] | None:
        return _ROWS


_schema = strawberry.Schema(
    query=Query,
    execution_context_class=FlatLists,
    config=StrawberryConfig(scalar_map=SCALARS),
)

_ANY = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, True, False]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Color.RED, Color.GREEN, Other.RED, "RED", "red", b"x"]),
)


def _typical(kind: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the field's type expects or a near miss, now and then anything at all: a
    row is built the fast way only when every selected value passes, so wrong values must be
    rare enough for the near misses to be the only problem of a row."""
    return st.one_of(*[kind] * 9, _ANY)


_INT32 = st.one_of(
    st.integers(-(2**31) - 1, 2**31),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, True, 1.0, 1.5, "7"]),
)
_LONG = st.one_of(st.integers(-(2**64), 2**64), st.sampled_from([True, 3.0, "8"]))
_TEXT = st.one_of(st.text(max_size=5), st.sampled_from([1, 2.5, True, False]))
_BOOL = st.sampled_from([True, False, 0, 1, "true"])
_COLOR = st.sampled_from([Color.RED, Color.GREEN, Other.RED, "RED", "red"])
_inner = st.builds(Inner, name=_typical(_TEXT), size=_typical(st.none() | _INT32))
_row = st.builds(
    Row,
    text=_typical(_TEXT),
    maybe_text=_typical(st.none() | _TEXT),
    count=_typical(_INT32),
    maybe_count=_typical(st.none() | _INT32),
    big=_typical(_LONG),
    flag=_typical(st.none() | _BOOL),
    ratio=_typical(st.none() | st.floats() | st.integers(-5, 5)),
    color=_typical(_COLOR),
    maybe_color=_typical(st.none() | _COLOR),
    inner=st.one_of(st.none(), _inner, _inner, st.just(_Stranger())),
)
_FIELDS = [
    "text",
    "maybeText",
    "count",
    "maybeCount",
    "big",
    "flag",
    "ratio",
    "color",
    "maybeColor",
    "shout",
    "__typename",
    "inner { name size __typename }",
    "inner { n: name }",
]


@st.composite
def _operation(draw: Any) -> str:
    fields = draw(st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=4))
    aliased = [f"a{i}: {f}" if draw(st.booleans()) else f for i, f in enumerate(fields)]
    root = draw(st.sampled_from(["rows", "maybeRows"]))
    return "{ " + root + " { " + " ".join(aliased) + " } }"


def _answer(query: str) -> str:
    result = asyncio.run(_schema.execute(query))
    errors = [{"message": e.message, "path": e.path} for e in result.errors or ()]
    return json.dumps({"data": result.data, "errors": errors}, default=repr)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(_operation(), st.lists(st.none() | _row, max_size=4))
def test_generated_builders_answer_as_graphql_core(query: str, rows: list[Any]) -> None:
    _ROWS[:] = rows
    try:
        execution.ENABLED = False
        core = _answer(query)
        execution.ENABLED = True
        fast = _answer(query)
    finally:
        execution.ENABLED = True
        _ROWS.clear()
    assert fast == core, query


def test_each_selection_is_compiled_once() -> None:
    _ROWS[:] = [
        Row(
            text="a",
            maybe_text=None,
            count=1,
            maybe_count=None,
            big=Long(2),
            flag=True,
            ratio=0.5,
            color=Color.RED,
            maybe_color=None,
            inner=None,
        )
    ]
    compiled._builders.clear()
    try:
        for query in ("{ rows { text count } }", "{ rows { text count } }", "{ rows { count } }"):
            assert json.loads(_answer(query))["errors"] == []
    finally:
        _ROWS.clear()
    assert len(compiled._builders) == 2
