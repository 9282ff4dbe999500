"""Replication of whole documents (RxDB's protocol), on both databases: pulls page by
checkpoint in full pages until a short one and miss nothing, even beside a transaction still
open; pushes write what fits, return the conflicts, and refuse whole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Action, Record
from gateway.errors import GatewayError
from gateway.sync.cursor import START, Cursor, Position, SnapshotMark
from gateway.sync.documents import PushRow
from gateway.sync.reader import ReadFilter, ReadRequest, read_actions
from gateway.sync.replication import pull_documents, push_documents
from gateway.sync.writer import WriteRequest, write_in_transaction
from tests.support.sync import ALICE, BOB, CAROL, PROJECT, act, make_study, rid, write

pytestmark = pytest.mark.usefixtures("study")

Docs = dict[str, dict[str, Any]]


@pytest.fixture
async def study(db: Database) -> None:
    await make_study(db)


async def pull(
    db: Database, checkpoint: str | None, limit: int, principal: Principal = ALICE, **kw: Any
) -> tuple[list[dict[str, Any]], str]:
    page = await pull_documents(
        db, principal, PROJECT, "notes", checkpoint=checkpoint, limit=limit, max_batch=100, **kw
    )
    return page.documents, page.checkpoint.encode()


async def sync(db: Database, checkpoint: str | None, limit: int) -> tuple[Docs, str, list[int]]:
    """What RxDB does: pull from its checkpoint until a page is not full."""
    docs: Docs = {}
    sizes = []
    while True:
        page, checkpoint = await pull(db, checkpoint, limit)
        sizes.append(len(page))
        for doc in page:
            docs[doc["id"]] = doc
        if len(page) < limit:
            assert checkpoint is not None
            return docs, checkpoint, sizes


async def push(db: Database, *rows: PushRow, principal: Principal = ALICE, **kw: Any) -> Any:
    outcome = await push_documents(db, principal, PROJECT, "notes", list(rows), max_batch=100, **kw)
    return outcome.conflicts


async def server(db: Database, user: str = "alice") -> Docs:
    async with db.session() as session:
        rows = await session.execute(
            select(Record.record_id, Record.data, Record.deleted).where(Record.user_id == user)
        )
        return {
            r: {k: v for k, v in (d or {}).items() if v is not None} | {"id": r, "_deleted": x}
            for r, d, x in rows
        }


async def count_actions(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Action)) or 0)


def note(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": rid(n), "_deleted": False, **fields}


async def test_a_first_sync_larger_than_a_page_pages_until_a_short_page(db: Database) -> None:
    await write(
        db, [act("notes", "INSERT", n, time=n, text=f"#{n}", done=False) for n in range(25)]
    )
    # Partial updates: the document is the whole record, not the update.
    await write(db, [act("notes", "UPDATE", 3, time=100, done=True)])
    await write(db, [act("notes", "DELETE", 4, time=101)])
    docs, checkpoint, sizes = await sync(db, None, 10)
    assert sizes == [10, 10, 5]
    assert docs == await server(db)
    assert docs[rid(3)] == note(3, text="#3", done=True)
    assert docs[rid(4)]["_deleted"] is True  # a client may hold it: it learns it is gone

    # Later changes, and only them, from the checkpoint; a record once however often changed.
    await write(db, [act("notes", "UPDATE", 5, time=200 + i, text=f"v{i}") for i in range(5)])
    await write(
        db, [act("notes", "DELETE", 6, time=300), act("notes", "INSERT", 40, 301, text="n")]
    )
    later, checkpoint, sizes = await sync(db, checkpoint, 10)
    assert sizes == [3]
    assert later == {k: v for k, v in (await server(db)).items() if k in {rid(5), rid(6), rid(40)}}
    assert later[rid(5)]["text"] == "v4" and later[rid(6)]["_deleted"] is True
    assert (await pull(db, checkpoint, 10))[0] == []


async def test_pages_of_the_log_are_full_while_more_is_ready(db: Database) -> None:
    """Many changes of few records: every page but the last holds exactly `limit` documents,
    or RxDB would stop early."""
    await write(db, [act("notes", "INSERT", n, time=n, text="a") for n in range(3)])
    _, checkpoint, _ = await sync(db, None, 5)
    changes = []
    for t in range(40):
        changes.append(act("notes", "UPDATE", t % 3, time=100 + t, text=f"t{t}"))
        if t % 3 == 0:
            changes.append(act("notes", "INSERT", 100 + t, time=100 + t, text="new"))
    await write(db, changes)
    docs, _, sizes = await sync(db, checkpoint, 5)
    assert sizes == [5, 5, 5, 2]  # 3 changed records and 14 new ones, each once
    assert docs == await server(db) and len(docs) == 17


async def test_a_page_may_end_exactly_at_the_end(db: Database) -> None:
    await write(db, [act("notes", "INSERT", n, time=n, text="a") for n in range(20)])
    docs, checkpoint, sizes = await sync(db, None, 10)
    assert sizes == [10, 10, 0] and len(docs) == 20
    await write(db, [act("notes", "INSERT", 50, time=50, text="b")])
    assert [d["id"] for d in (await pull(db, checkpoint, 10))[0]] == [rid(50)]


async def test_a_pull_never_passes_a_transaction_still_open(db: Database) -> None:
    """A write that commits late is pulled later, never skipped (PostgreSQL: readers stop
    below the oldest running transaction; SQLite: one writer at a time)."""
    await write(db, [act("notes", "INSERT", 1, time=1, text="first")])
    _, checkpoint, _ = await sync(db, None, 10)
    seen: Docs = {}
    async with db.transaction() as session:
        held = WriteRequest(PROJECT, [act("notes", "INSERT", 2, time=2, text="late")])
        await write_in_transaction(session, ALICE, held)
        if db.backend == "postgresql":  # a younger write commits meanwhile
            # (from a device of its own: the held write holds the device-less write progress)
            await write(db, [act("notes", "INSERT", 3, time=3, text="young")], device="tab")
        page, checkpoint = await pull(db, checkpoint, 10)
        seen |= {d["id"]: d for d in page}
        assert rid(2) not in seen
    docs, _, _ = await sync(db, checkpoint, 10)
    seen |= docs
    assert seen == {k: v for k, v in (await server(db)).items() if k != rid(1)}


async def test_concurrent_writers_and_pullers_end_with_the_server(db: Database) -> None:
    async def writer(base: int) -> None:
        for i in range(8):
            n = base + i
            await write(db, [act("notes", "INSERT", n, time=n, text="x")])
            await write(db, [act("notes", "UPDATE", n, time=n + 1, text="y")])

    async def puller() -> tuple[Docs, str | None]:
        docs: Docs = {}
        checkpoint = None
        for _ in range(30):
            page, checkpoint = await pull(db, checkpoint, 3)
            docs |= {d["id"]: d for d in page}
            await asyncio.sleep(0)
        return docs, checkpoint

    *_, first, second = await asyncio.gather(writer(1000), writer(2000), puller(), puller())
    # Once the writers are done, each puller catches up from where it was.
    for docs, checkpoint in (first, second):
        assert docs | (await sync(db, checkpoint, 3))[0] == await server(db)


async def test_push_writes_what_fits_and_returns_the_conflicts(db: Database) -> None:
    assert await push(db, PushRow(None, note(1, text="one", done=False))) == []
    assert await push(db, PushRow(None, note(2, text="two"))) == []
    master1 = note(1, text="one", done=False)
    assert (await server(db))[rid(1)] == master1

    # Another device changes record 2: a client still assuming the old state conflicts, and
    # gets the current document; its other row is written all the same.
    await write(db, [act("notes", "UPDATE", 2, time=10, text="theirs")])
    conflicts = await push(
        db,
        PushRow(note(2, text="two"), note(2, text="mine")),
        PushRow(master1, note(1, text="uno")),  # `done` left out: removed from the record
    )
    assert conflicts == [note(2, text="theirs")]
    assert (await server(db))[rid(1)] == note(1, text="uno")
    assert (await server(db))[rid(2)] == note(2, text="theirs")

    # Deleted with `_deleted`, as a DELETE action other devices read.
    assert (
        await push(db, PushRow(note(1, text="uno"), note(1, text="uno") | {"_deleted": True})) == []
    )
    assert (await server(db))[rid(1)]["_deleted"] is True
    # RxDB's own fields are not data, and an unchanged document writes nothing.
    before = await count_actions(db)
    same = note(2, text="theirs") | {"_meta": {"lwt": 1}, "_rev": "1-a", "_attachments": {}}
    assert await push(db, PushRow(same, same)) == []
    assert await count_actions(db) == before

    # Pushes are database actions (the fields that changed), as other devices read them.
    async with db.session() as session:
        logged = (
            await session.execute(
                select(Action.action, Action.record_id, Action.json_data, Action.source)
                .where(Action.source == "rxdb")
                .order_by(Action.id)
            )
        ).all()
    assert [tuple(row) for row in logged] == [
        ("INSERT", rid(1), '{"text": "one", "done": false}', "rxdb"),
        ("INSERT", rid(2), '{"text": "two"}', "rxdb"),
        ("UPDATE", rid(1), '{"text": "uno", "done": null}', "rxdb"),
        ("DELETE", rid(1), None, "rxdb"),
    ]
    # Alice's pushes are her own: a read of hers without a deviceId needs includeOwn.
    log = ReadRequest(PROJECT, filter=ReadFilter(["notes"], include_own=True), snapshot=False)
    batch = await read_actions(db, ALICE, log, max_batch=100)
    assert [(a.action.value, a.record_id) for a in batch.actions] == [("INSERT", rid(2))]


async def test_concurrent_pushes_from_one_state_conflict(db: Database) -> None:
    """Two clients push edits of the same version at once: one is written, the other gets
    the first one's document as a conflict (the records are locked while compared)."""
    await push(db, PushRow(None, note(1, text="v1")))
    base = note(1, text="v1")
    edits = [note(1, text=f"client {c}") for c in "ab"]
    results = await asyncio.gather(*(push(db, PushRow(base, edit)) for edit in edits))
    assert sorted(len(r) for r in results) == [0, 1]
    winner = edits[results.index([])]
    assert results[1 - results.index([])] == [winner]
    assert (await server(db))[rid(1)] == winner


async def test_a_refused_document_refuses_the_push(db: Database) -> None:
    await push(db, PushRow(None, note(1, text="one")))
    before = (await server(db), await count_actions(db))
    with pytest.raises(GatewayError) as refused:
        await push(
            db,
            PushRow(None, note(2, text="fine")),
            PushRow(note(1, text="one"), note(1, text=7)),  # text is a STRING
            PushRow(None, note(3, unknown=1)),
        )
    assert refused.value.code == "VALIDATION_FAILED"
    assert [p["index"] for p in refused.value.details["invalidDocuments"]] == [1, 2]
    assert (await server(db), await count_actions(db)) == before


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        ([PushRow(None, {"text": "no id"})], "BAD_USER_INPUT"),
        ([PushRow(None, note(1) | {"id": "not-a-uuid", "text": "x"})], "BAD_USER_INPUT"),
        ([PushRow(None, note(1) | {"id": rid(0xABC).upper(), "text": "x"})], "BAD_USER_INPUT"),
        ([PushRow(None, note(1, text="x") | {"_deleted": "yes"})], "BAD_USER_INPUT"),
        ([PushRow(note(2, text="x"), note(1, text="x"))], "BAD_USER_INPUT"),
        ([PushRow(None, note(1, text="x")), PushRow(None, note(1, text="y"))], "BAD_USER_INPUT"),
        ([PushRow(None, [1, 2])], "BAD_USER_INPUT"),  # type: ignore[arg-type]
        ([PushRow(None, note(n, text="x")) for n in range(101)], "LIMIT_EXCEEDED"),
    ],
)
async def test_bad_pushes_are_coded_and_change_nothing(
    db: Database, rows: list[PushRow], code: str
) -> None:
    with pytest.raises(GatewayError) as refused:
        await push(db, *rows)
    assert refused.value.code == code
    assert await count_actions(db) == 0


@pytest.mark.parametrize(
    ("checkpoint", "limit", "code"),
    [
        (None, 0, "BAD_USER_INPUT"),
        (None, 101, "LIMIT_EXCEEDED"),
        ("nonsense", 10, "BAD_USER_INPUT"),
        # inside a snapshot the gateway never took
        (
            Cursor(START, snapshot=SnapshotMark(Position(10**12, 0), 0)).encode(),
            10,
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_bad_pulls_are_coded(
    db: Database, checkpoint: str | None, limit: int, code: str
) -> None:
    with pytest.raises(GatewayError) as refused:
        await pull(db, checkpoint, limit)
    assert refused.value.code == code


async def test_another_users_table_is_never_read_or_written(db: Database) -> None:
    await push(db, PushRow(None, note(1, text="alice's")))
    await push(db, PushRow(None, note(2, text="bob's")), principal=BOB)
    # Each user's pull has their own records only.
    assert [d["id"] for d in (await pull(db, None, 10, principal=BOB))[0]] == [rid(2)]
    assert [d["id"] for d in (await pull(db, None, 10))[0]] == [rid(1)]
    # Naming another user's data without access is refused, read or write.
    for principal in (BOB, CAROL):
        with pytest.raises(GatewayError) as refused:
            await pull(db, None, 10, principal=principal, user="alice")
        assert refused.value.code == "FORBIDDEN"
        with pytest.raises(GatewayError) as refused:
            await push(db, PushRow(None, note(3, text="x")), principal=principal, user="alice")
        assert refused.value.code == "FORBIDDEN"
    # A conflict shows only the pushing user's own record: bob's id 1 is a new record of his.
    assert await push(db, PushRow(note(1, text="guess"), note(1, text="bob")), principal=BOB) == []
    assert (await server(db, "alice"))[rid(1)]["text"] == "alice's"
