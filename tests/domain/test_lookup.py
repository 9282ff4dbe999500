"""One-row reads on the driver's connection (gateway/db/lookup.py): the same values as a
session's read on both databases, and a pooled connection never handed out again half-way
through a statement."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import bindparam, func, literal, select

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.lookup import Lookup
from gateway.db.models import Project
from gateway.sync import projects

ADMIN = Principal("root", Role.ADMIN)

_PROJECT = Lookup(
    select(
        Project.id,
        Project.code,
        Project.open,
        Project.created_at,
        (Project.name + bindparam("suffix")).label("titled"),
        literal(None).label("missing"),
    ).where(Project.code == bindparam("code"))
)


async def test_a_lookup_reads_what_a_session_reads(db: Database) -> None:
    await projects.create_project(db, ADMIN, "study", "Study")
    parameters = {"code": "study", "suffix": "!"}
    row = await _PROJECT.first(db, parameters)
    async with db.session() as session:
        expected = (await session.execute(_PROJECT.statement, parameters)).one()
    assert row is not None
    found = (row.id, row.code, row.open, row.created_at, row.titled, row.missing)
    assert found == tuple(expected)
    assert row.created_at.tzinfo is not None and row.titled == "Study!"
    assert await _PROJECT.first(db, {"code": "none", "suffix": ""}) is None


async def test_a_lookup_refuses_lists() -> None:
    listed = Lookup(select(Project.id).where(Project.code.in_(bindparam("codes", expanding=True))))  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="single values"):
        listed._compile(Database("postgresql+asyncpg://unused@127.0.0.1/unused").engine.dialect)


async def test_a_lookup_cut_off_mid_statement_leaves_the_pool_usable(
    postgres_db: Database,
) -> None:
    """PostgreSQL only: SQLite's lookups go through a session and have no driver path."""
    slow = Lookup(select(func.pg_sleep(bindparam("seconds")).label("slept")))
    task = asyncio.create_task(slow.first(postgres_db, {"seconds": 5}))
    await asyncio.sleep(0.3)  # the statement is running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):  # the next checkouts get a working connection, not the cut-off one
        row = await slow.first(postgres_db, {"seconds": 0})
        assert row is not None and row.slept is None
