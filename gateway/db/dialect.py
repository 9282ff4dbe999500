"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession


def insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that supports ``on_conflict_do_update`` / ``on_conflict_do_nothing``; both
    dialects spell those the same way."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def in_values(session: AsyncSession, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``. On PostgreSQL as ``column = ANY($1)`` with one array parameter:
    a list of separate parameters becomes an array rebuilt for every row under a cached
    generic plan, and is many times slower on large tables."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_GENERIC_PLANS = text("SET LOCAL plan_cache_mode = auto")


async def generic_plans(session: AsyncSession) -> None:
    """For the rest of the transaction, let PostgreSQL reuse generic plans (the connections'
    default forces a custom plan per run, which the log's readers need): a write's foreign-key
    checks are prepared once and run per row, and re-planning each made a batch's INSERTs about
    1.5 times as slow. The write's own lookups do not depend on it (see the writer's)."""
    if is_postgresql(session):
        await session.execute(_GENERIC_PLANS)


# PostgreSQL's "try again" failures: deadlock detected, serialization failure.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: DBAPIError) -> bool:
    """Whether the database undid the statement only to break a lock cycle or a serialization
    conflict: run again, it goes through."""
    original = exc.orig
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state in _TRANSIENT_SQLSTATES
