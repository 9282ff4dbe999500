"""Which tables of a project an exchange covers (SenSeeAct's includeTables / excludeTables)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.errors import BadUserInput
from gateway.sync.tables import TableSpec


@dataclass(frozen=True, slots=True)
class CatalogTable:
    id: int
    spec: TableSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_time_fields(self) -> bool:
        return self.spec.has_utc_time or self.spec.has_local_time


def select_tables(
    tables: Mapping[str, CatalogTable],
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
) -> dict[str, CatalogTable]:
    """An empty or missing include list means every table; exclude always wins. Naming a table
    the project does not have is an error: a typo must not silently sync nothing."""
    check_known(tables, include or (), "includeTables")
    check_known(tables, exclude or (), "excludeTables")
    excluded = set(exclude or ())
    chosen = set(include) if include else set(tables)
    return {name: t for name, t in sorted(tables.items()) if name in chosen - excluded}


def check_known(tables: Mapping[str, CatalogTable], names: Iterable[str], field: str) -> None:
    unknown = sorted(set(names) - set(tables))
    if unknown:
        raise BadUserInput(
            f"{field} names tables the project does not have: {', '.join(unknown)}",
            field=field,
            tables=unknown,
        )
