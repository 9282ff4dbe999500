"""Field-by-field comparison of a REST answer with a seed document's example answer: the same
names, the same JSON types, times in the same format, and the same values except where the
fixture cannot reproduce them (log positions, the time of the test run): those paths are
compared by type and format only."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

# The seeds' time formats: CSPro and RegardingWork to the second, Census to the millisecond.
TIME_FORMATS = (
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _format(value: str) -> int | None:
    return next((i for i, f in enumerate(TIME_FORMATS) if f.match(value)), None)


def assert_matches(
    actual: Any,
    expected: Any,
    *,
    loose: Collection[str] = (),
    extra_keys: bool = False,
    path: str = "",
) -> None:
    """``actual`` has ``expected``'s shape and values. ``loose`` paths (``"a.b"``, list items as
    ``"a[]"``) are compared by type and format only; with ``extra_keys`` an object may carry
    more keys than the example shows (the seed shows an excerpt)."""
    where = path or "the answer"
    assert _kind(actual) == _kind(expected), f"{where}: {actual!r} is not like {expected!r}"
    if isinstance(expected, dict):
        missing = expected.keys() - actual.keys()
        assert not missing, f"{where}: missing {sorted(missing)}"
        if not extra_keys:
            assert actual.keys() == expected.keys(), (
                f"{where}: extra {actual.keys() - expected.keys()}"
            )
        for key, value in expected.items():
            inner = f"{path}.{key}" if path else key
            assert_matches(actual[key], value, loose=loose, extra_keys=extra_keys, path=inner)
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for got, want in zip(actual, expected, strict=True):
            assert_matches(got, want, loose=loose, extra_keys=extra_keys, path=f"{path}[]")
    elif isinstance(expected, str) and _format(expected) is not None:
        assert _format(actual) == _format(expected), f"{where}: {actual!r} is not a seed time"
        if path not in loose:
            assert actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif path not in loose:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
