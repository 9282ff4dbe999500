"""The read horizon is per database (gateway/sync/horizon.py): a transaction left open in
another database of the same PostgreSQL server holds no reader back, one in the gateway's own
database still does (and /readyz names it), and nothing is lost or repeated either way."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.sync.cursor import Position
from gateway.sync.horizon import horizon
from gateway.sync.writer import WriteRequest, write_in_transaction
from tests.support import GatewayServer
from tests.support.live import (
    count_at_least,
    live_session,
    make_project,
    record_ids,
    subscription,
    take,
    write_notes,
)
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

ON_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"])

READ = """query($progress: [ProgressInput!]) {
  actions(project: "live", deviceId: "laptop", progress: $progress) {
    actions { recordId } progress { table cursor } hasMore
  }
}"""


@dataclass(frozen=True)
class Held:
    xid: int  # the top-level transaction's xid8
    pid: int


@asynccontextmanager
async def held_open(url: str) -> AsyncIterator[Held]:
    """A transaction that has written (in a subtransaction, so its top-level id is taken
    lazily on the way) and stays open until the block ends, then rolls back."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SAVEPOINT inner_write; CREATE TEMPORARY TABLE held (x int)")
        xid = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
        yield Held(xid=xid, pid=await conn.fetchval("SELECT pg_backend_pid()"))
        await transaction.rollback()
    finally:
        await conn.close()


async def current_horizon(db: Database) -> Position:
    async with db.snapshot() as session:
        return await horizon(session)


# On a shared server, a transaction of another database that was running at a read's snapshot
# and ended before its horizon was computed cannot be told from one of this database, and holds
# that one read back (horizon.py). Checks of delivery therefore retry for a moment.
SETTLE_SECONDS = 2.0


async def horizon_when(db: Database, ok: Callable[[int], bool]) -> int:
    """The horizon's xid once ``ok`` holds for it, or the last one after SETTLE_SECONDS."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while not ok(xid := (await current_horizon(db)).xid):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    return xid


async def read_ids(
    db: Database, want: int, progress: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """What the laptop reads from ``progress``, until ``want`` actions came or SETTLE_SECONDS
    passed, and its progress."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    ids: list[str] = []
    while True:
        got, progress, _ = await read_all(db, device="laptop", progress=progress)
        ids += [a.record_id for a in got]
        if len(ids) >= want or asyncio.get_running_loop().time() > deadline:
            return ids, progress
        await asyncio.sleep(0.05)


async def server_wide_xmin(db: Database) -> int:
    """What the horizon was before it became per database."""
    async with db.snapshot() as session:
        sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        return int((await session.execute(text(sql))).scalar_one())


async def last_xid(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(text("SELECT max(xid) FROM actions"))).scalar_one())


@ON_POSTGRESQL
async def test_a_transaction_open_in_another_database_holds_no_reader_back(
    db: Database, postgres_url: str
) -> None:
    await make_study(db)
    async with held_open(postgres_url) as other:
        await write(db, [act("notes", "INSERT", 1, 1, text="after")], device="phone")
        written = await last_xid(db)
        assert other.xid < written
        assert await server_wide_xmin(db) <= other.xid, "the old horizon would wait for it"

        ids, progress = await read_ids(db, 1)
        assert ids == [rid(1)]
        assert await horizon_when(db, lambda xid: xid > written) > written > other.xid

    assert (await read_all(db, device="laptop", progress=progress))[0] == []


@ON_POSTGRESQL
async def test_a_transaction_open_in_the_gateway_database_still_holds_readers_back(
    db: Database, postgres_url: str
) -> None:
    """...while one in another database is excluded beside it."""
    await make_study(db)
    async with held_open(postgres_url), held_open(db.url) as own:
        await write(db, [act("notes", "INSERT", 1, 1, text="after")], device="phone")
        got, progress, _ = await read_all(db, device="laptop")
        assert got == [], "the reader passed a transaction of its database that is still open"
        assert await horizon_when(db, lambda xid: xid == own.xid) == own.xid
    assert (await read_ids(db, 1, progress))[0] == [rid(1)]


@ON_POSTGRESQL
async def test_a_transaction_that_writes_after_the_horizon_passed_it_is_read_later(
    db: Database, postgres_url: str
) -> None:
    """Ids are taken at the first write: a gateway transaction that began before a read and
    writes after it gets an id above that read's horizon, so the next read returns it."""
    await make_study(db)
    async with held_open(postgres_url), db.transaction() as late:
        await late.execute(text("SELECT 1"))  # begun, without an id yet
        await write(db, [act("notes", "INSERT", 1, 1, text="first")], device="phone")
        first, progress = await read_ids(db, 1)
        assert first == [rid(1)]
        moved_to = await current_horizon(db)

        late_note = [act("notes", "INSERT", 2, 2, text="late")]
        request = WriteRequest(PROJECT, late_note, device_id="phone")
        await write_in_transaction(late, ALICE, request)
    assert await last_xid(db) >= moved_to.xid
    assert (await read_ids(db, 1, progress))[0] == [rid(2)]


@ON_POSTGRESQL
async def test_a_writer_that_commits_between_the_snapshot_and_the_horizon_is_not_passed(
    db: Database, postgres_url: str
) -> None:
    """pg_stat_activity is read after the reader's snapshot: a writer running at the snapshot
    may be gone from it by then, yet its actions are not in the snapshot. The horizon must stay
    at it (a horizon made of this database's transactions in pg_stat_activity would pass it)."""
    await make_study(db)
    written, may_commit = asyncio.Event(), asyncio.Event()
    writer_xid: list[int] = []

    async def writer() -> None:
        async with db.transaction() as session:
            note = [act("notes", "INSERT", 1, 1, text="racing")]
            # Not the later write's device, which would wait for this transaction's locks.
            request = WriteRequest(PROJECT, note, device_id="racer")
            await write_in_transaction(session, ALICE, request)
            sql = "SELECT pg_current_xact_id()::text::bigint"
            writer_xid.append(int((await session.execute(text(sql))).scalar_one()))
            written.set()
            await may_commit.wait()

    async with held_open(postgres_url) as other:
        task = asyncio.create_task(writer())
        await asyncio.wait_for(written.wait(), 10)
        # A later transaction commits, so the snapshot lists the writer as running.
        await write(db, [act("notes", "INSERT", 2, 2, text="later")], device="phone")
        async with db.snapshot() as reader:
            await reader.execute(text("SELECT 1"))  # the snapshot, taken while the writer runs
            may_commit.set()
            await asyncio.wait_for(task, 10)
            upper = await horizon(reader)
            below = text("SELECT count(*) FROM actions WHERE xid < :upper")
            assert (await reader.execute(below, {"upper": upper.xid})).scalar_one() == 0
    assert other.xid < upper.xid == writer_xid[0]
    assert (await read_ids(db, 2))[0] == [rid(1), rid(2)]


@ON_POSTGRESQL
async def test_outside_a_snapshot_the_horizon_stays_server_wide(
    db: Database, postgres_url: str
) -> None:
    """Without REPEATABLE READ, pg_stat_activity may be older than the statement's snapshot,
    so the horizon falls back to the snapshot's xmin."""
    await make_study(db)
    async with held_open(postgres_url) as other:
        await write(db, [act("notes", "INSERT", 1, 1, text="after")], device="phone")
        async with db.session() as session:
            assert (await horizon(session)).xid <= other.xid
        assert await horizon_when(db, lambda xid: xid > other.xid) > other.xid


@ON_POSTGRESQL
async def test_out_of_order_writers_lose_nothing_beside_another_database(
    db: Database, postgres_url: str
) -> None:
    """The concurrency test of domain/test_concurrency.py with a transaction held open in
    another database, so every read excludes it while the gateway's writers commit out of order
    and roll back at random."""
    await make_study(db)
    async with held_open(postgres_url) as other, asyncio.timeout(60):
        await race_writers_and_readers(
            db, random.Random(20261205), batches=8, most_per_batch=3, most_per_read=5
        )
        assert await horizon_when(db, lambda xid: xid > other.xid) > other.xid


@ON_POSTGRESQL
async def test_a_live_subscriber_is_not_held_back_by_another_database(
    server: GatewayServer, postgres_url: str
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    token = server.token("alice", Role.PATIENT)
    async with (
        live_session(server, token, "graphql-transport-ws") as session,
        subscription(session, deviceId="laptop") as stream,
        held_open(postgres_url),
    ):
        await asyncio.sleep(0.3)  # subscribed and caught up
        await write_notes(alice, [1])
        # Without the per-database horizon nothing would arrive before the other transaction
        # ends. A read held back once (see SETTLE_SECONDS) waits for the next wake-up.
        arrived = asyncio.create_task(take(stream, count_at_least(1), seconds=5))
        if not (await asyncio.wait({arrived}, timeout=2))[0]:
            await write_notes(alice, [2])
        assert record_ids(await arrived)[0] == rid(1)


@ON_POSTGRESQL
async def test_readyz_names_a_transaction_held_open_in_the_gateway_database(
    server: GatewayServer, postgres_url: str
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        async with held_open(postgres_url):  # another database's: not the gateway's concern
            ready = await http.get("/readyz")
            assert (ready.status_code, "oldestTransaction" in ready.json()) == (200, False)

        async with held_open(server.settings.database_url) as own:
            await asyncio.sleep(0.3)
            await write_notes(alice, [1])
            assert (await alice.data(READ))["actions"]["actions"] == []
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            oldest = ready.json()["oldestTransaction"]
            assert oldest["pid"] == own.pid
            assert 0.2 <= oldest["ageSeconds"] < 30
            assert oldest["state"] == "idle in transaction"

        for _ in range(int(SETTLE_SECONDS / 0.05)):  # the server's state: nothing signals here
            delivered = (await alice.data(READ))["actions"]
            if delivered["actions"]:
                break
            await asyncio.sleep(0.05)
        assert record_ids([delivered]) == [rid(1)]
        ready = await http.get("/readyz")
    assert (ready.status_code, "oldestTransaction" in ready.json()) == (200, False)


async def test_readyz_without_an_open_transaction_has_no_detail(
    server: GatewayServer, backend: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await make_project(server)
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json().get("oldestTransaction") is None, backend


async def test_the_horizon_covers_every_committed_action(db: Database) -> None:
    """SQLite: the last id. PostgreSQL, nothing running: past the last transaction id."""
    await make_study(db)
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in (1, 2, 3)], device="phone")
    async with db.session() as session:
        last = (await session.execute(text("SELECT max(xid), max(id) FROM actions"))).one()
    if db.backend == "sqlite":
        assert await current_horizon(db) == Position(0, last[1])
    else:
        assert await horizon_when(db, lambda xid: xid > last[0]) > last[0]
