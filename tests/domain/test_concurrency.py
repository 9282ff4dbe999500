"""No loss, no duplicates under concurrency (DESIGN.md rule 1)."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select, text

from gateway.db import Database
from gateway.db.models import Action
from gateway.sync.writer import WriteRequest, write_in_transaction
from tests.support.sync import (
    ALICE,
    PROJECT,
    act,
    make_study,
    race_writers_and_readers,
    read_all,
    rid,
    write,
)


async def test_reader_waits_for_an_older_open_transaction_and_then_gets_it_once(
    postgres_db: Database,
) -> None:
    """A takes a transaction id and writes, B writes and commits, a reader reads, A commits.

    A cursor made of ids or times alone would move past B (committed, newer) and never
    return A. The reader must instead hold back at A and get both, each exactly once."""
    db = postgres_db
    await make_study(db)
    a_written, a_may_commit = asyncio.Event(), asyncio.Event()

    async def transaction_a() -> None:
        async with db.transaction() as session:
            await write_in_transaction(
                session,
                ALICE,
                WriteRequest(PROJECT, [act("notes", "INSERT", 1, 1, text="A")], device_id="a"),
            )
            a_written.set()
            await a_may_commit.wait()

    a = asyncio.create_task(transaction_a())
    await asyncio.wait_for(a_written.wait(), 10)
    await asyncio.wait_for(write(db, [act("notes", "INSERT", 2, 2, text="B")], device="b"), 10)
    async with db.session() as session:  # B is committed and visible to everyone
        assert await session.scalar(select(func.count()).select_from(Action)) == 1

    first, progress, _ = await read_all(db)
    assert first == [], "the reader passed a transaction that had not committed"

    a_may_commit.set()
    await asyncio.wait_for(a, 10)
    rest, progress, _ = await read_all(db, progress=progress)
    assert [a.record_id for a in rest] == [rid(1), rid(2)]
    assert (await read_all(db, progress=progress))[0] == []


async def test_gateway_connections_end_transactions_left_idle(postgres_db: Database) -> None:
    async with postgres_db.session() as session:
        timeout = await session.scalar(text("SHOW idle_in_transaction_session_timeout"))
        plans = await session.scalar(text("SHOW plan_cache_mode"))
    assert (timeout, plans) == ("1min", "force_custom_plan")


async def test_concurrent_writers_and_readers_lose_nothing_and_repeat_nothing(
    db: Database,
) -> None:
    """Writers with random delays before commit, some rolling back; readers paging from their
    progress until the writers stop. Each reader gets exactly the committed set, once."""
    await make_study(db)
    async with asyncio.timeout(90):
        await race_writers_and_readers(
            db, random.Random(20261122), batches=12, most_per_batch=4, most_per_read=7
        )
