"""One-row reads by key, the hot read of dashboards (``syncRun(id)``), run straight on the
driver's connection on PostgreSQL.

Through an ORM session such a read spent most of its CPU outside the database: the session and
its transaction state, the ORM's compile step and its result objects, two greenlet switches.
A ``Lookup`` compiles its statement once per dialect (SQL text, the order of its parameters,
each column's conversion of what the driver returns, as SQLAlchemy's own result would apply
it) and then runs ``fetchrow`` on a pooled asyncpg connection. Like ``Database.lookup()``, the
statement runs on its own (no transaction) and sees what was committed when it ran. On SQLite
it goes through ``Database.lookup()``: the embedded default has no network round trip to save.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect

from gateway.db.engine import Database


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    parameters: Sequence[str]  # bind names, in the order of $1, $2, ...
    fixed: Mapping[str, Any]  # the statement's own values (literals), by bind name
    binds: Sequence[Callable[[Any], Any] | None]
    keys: Sequence[str]
    results: Sequence[Callable[[Any], Any] | None]


class Lookup:
    """A statement that returns at most one row, compiled on first use."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}  # by dialect name

    async def first(self, db: Database, parameters: Mapping[str, Any]) -> Any | None:
        """The first row, its columns as attributes (as a SQLAlchemy ``Row`` has them)."""
        if db.backend != "postgresql":
            async with db.lookup() as session:
                return (await session.execute(self.statement, parameters)).first()
        compiled = self._compile(db.engine.dialect)
        given = {**compiled.fixed, **parameters}
        values = [
            bind(given[name]) if bind is not None else given[name]
            for name, bind in zip(compiled.parameters, compiled.binds, strict=True)
        ]
        async with db.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            # Cancelled mid-statement, asyncpg cancels it on the server and the connection is
            # usable again; one the server closed is replaced at its next checkout (engine.py).
            row = await raw.driver_connection.fetchrow(compiled.sql, *values)  # type: ignore[union-attr]
        if row is None:
            return None
        return SimpleNamespace(
            **{
                key: convert(value) if convert is not None else value
                for key, convert, value in zip(compiled.keys, compiled.results, row, strict=True)
            }
        )

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect)
        parameters = list(compiled.positiontup or ())
        binds, fixed = [], {}
        for name in parameters:
            parameter = compiled.binds[name]
            if parameter.expanding:
                raise TypeError("a Lookup takes single values, not lists (IN)")
            binds.append(parameter.type.dialect_impl(dialect).bind_processor(dialect))
            if not parameter.required:
                fixed[name] = parameter.effective_value
        columns = list(self.statement.selected_columns)
        keys = [column.key for column in columns]
        if len(set(keys)) != len(keys):
            raise TypeError(f"a Lookup needs distinct column names, not {keys}")
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
        found = _Compiled(compiled.string, parameters, fixed, binds, keys, results)
        self._compiled[dialect.name] = found
        return found
