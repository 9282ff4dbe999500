"""What a write is: the request, the outcome, progress marks, and an action once checked."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.runs import RunInfo
from gateway.sync.selection import CatalogTable

NO_DEVICE = ""  # write progress of actions written without a deviceId


CHUNK = 500  # keys per lookup: within SQLite's parameter limit


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class WriteRequest:
    project: str
    actions: Sequence[IncomingAction]
    user: str | None = None
    device_id: str | None = None
    include_tables: Sequence[str] | None = None
    exclude_tables: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class WriteMark:
    """Write progress of one table: the (time, order) of the latest action written."""

    table: str
    user: str
    time: int | None
    order: int | None


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    accepted: list[int]
    duplicates: list[int]
    superseded: list[int]  # accepted, but last-writer-wins losers: written, applied to nothing
    progress: list[WriteMark]
    project_id: int
    user: str
    table_ids: frozenset[int]  # the tables that got new actions
    run: RunInfo | None  # the device's run of this batch (none without a deviceId)


@dataclass(slots=True)
class Checked:
    index: int
    table: CatalogTable
    record_id: str
    action: ActionType
    data: dict[str, Any] | None
    source: IncomingAction
    sample_time: int | None = None

    @property
    def identity(self) -> tuple[int, str, int, int]:
        return (self.table.id, self.record_id, self.source.time, self.source.order)

    @property
    def record(self) -> tuple[int, str]:
        return (self.table.id, self.record_id)


def by_table(keys: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """Record ids grouped by table, each group sorted: every batch locks in the same order."""
    grouped: dict[int, set[str]] = {}
    for table_id, record_id in keys:
        grouped.setdefault(table_id, set()).add(record_id)
    return {table_id: sorted(ids) for table_id, ids in sorted(grouped.items())}


def chunks(items: list[_T]) -> Iterable[list[_T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def parsed(json_data: str | None) -> Any:
    return None if json_data is None else json.loads(json_data)
