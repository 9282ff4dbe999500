"""Reading the log (domain layer, both databases): cursors, merging, filters, paging."""

from __future__ import annotations

import json
import random

import pytest

from gateway.db import Database
from gateway.errors import GatewayError
from gateway.sync.grants import grant_access
from gateway.sync.reader import ReadFilter, ReadRequest, TimeRange, read_actions, read_stats
from tests.support.sync import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    PROJECT,
    act,
    make_study,
    read_all,
    rid,
    write,
)

pytestmark = pytest.mark.usefixtures("study")


@pytest.fixture
async def study(db: Database) -> None:
    await make_study(db)


def keys(actions: list) -> list[tuple[str, str, str]]:
    return [(a.table, a.action.value, a.record_id) for a in actions]


async def test_read_returns_the_log_once_and_progress_resumes_after_it(db: Database) -> None:
    await write(
        db,
        [
            act("notes", "INSERT", 1, 1, text="a"),
            act("steps", "INSERT", 2, 2, utcTime=7, value=1.0),
        ],
    )
    actions, progress, _ = await read_all(db)
    # A first read comes from the tables' snapshots: in the order the records were created,
    # not necessarily the log's (see test_first_sync.py).
    actions.sort(key=lambda a: a.position)
    assert keys(actions) == [("notes", "INSERT", rid(1)), ("steps", "INSERT", rid(2))]
    assert sorted(progress) == ["cases", "moods", "notes", "steps"]
    first = actions[0]
    assert (first.user, first.time, first.order, first.source) == ("alice", 1, 0, "local")
    assert (first.json_data, actions[1].sample_time) == ('{"text": "a"}', 7)
    assert (await read_all(db, progress=progress))[0] == []
    await write(db, [act("notes", "UPDATE", 1, 3, text="b")])
    again, _, _ = await read_all(db, progress=progress)
    assert keys(again) == [("notes", "UPDATE", rid(1))]


async def test_progress_reports_time_and_order_of_the_last_action_per_table(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 500, order=3, text="a")])
    result = await read_actions(db, ALICE, ReadRequest(PROJECT), max_batch=100)
    by_table = {p.table: p.cursor for p in result.progress}
    assert (by_table["notes"].time, by_table["notes"].order) == (500, 3)
    assert by_table["steps"].time is None


async def test_merging_within_a_batch_and_progress_past_what_was_merged(db: Database) -> None:
    await write(
        db,
        [
            act("notes", "INSERT", 1, 1, text="a"),
            act("notes", "UPDATE", 1, 2, done=True),
            act("notes", "INSERT", 2, 3, text="gone"),
            act("notes", "DELETE", 2, 4),
            act("notes", "INSERT", 3, 5, text="c"),
        ],
    )
    _, start, _ = await read_all(db)  # everything so far, merged
    await write(
        db,
        [
            act("notes", "UPDATE", 3, 6, text="c2"),
            act("notes", "UPDATE", 3, 7, done=False),
            act("notes", "UPDATE", 1, 8, text="a2"),
            act("notes", "DELETE", 1, 9),
        ],
    )
    merged, progress, _ = await read_all(db, progress=start)
    assert [(a.action.value, a.record_id, a.json_data, a.time) for a in merged] == [
        ("UPDATE", rid(3), '{"text":"c2","done":false}', 7),
        ("DELETE", rid(1), None, 9),
    ]
    assert (await read_all(db, progress=progress))[0] == []
    fresh, _, _ = await read_all(db)  # a first sync: the records as they are, from a snapshot
    assert [(a.action.value, a.record_id) for a in fresh] == [("INSERT", rid(3))]
    assert json.loads(fresh[0].json_data) == {"text": "c2", "done": False}


async def test_include_and_exclude_tables(db: Database) -> None:
    await write(
        db,
        [
            act("notes", "INSERT", 1, 1, text="a"),
            act("steps", "INSERT", 2, 2, utcTime=1, value=1.0),
            act("cases", "INSERT", 3, 3, caseKey="k"),
        ],
    )
    only = ReadFilter(include_tables=["notes", "steps"], exclude_tables=["steps"])
    actions, progress, _ = await read_all(db, filter=only)
    assert keys(actions) == [("notes", "INSERT", rid(1))]
    assert list(progress) == ["notes"]
    rest, _, _ = await read_all(db, filter=ReadFilter(exclude_tables=["notes"]))
    assert [a.table for a in rest] == ["steps", "cases"]
    with pytest.raises(GatewayError) as caught:
        await read_all(db, filter=ReadFilter(include_tables=["nope"]))
    assert caught.value.code == "BAD_USER_INPUT"


async def test_time_ranges_apply_to_sample_time_and_only_where_tables_have_time_fields(
    db: Database,
) -> None:
    await write(
        db,
        [
            act("steps", "INSERT", 1, 1, utcTime=999, value=1.0),
            act("steps", "INSERT", 2, 2, utcTime=1000, value=1.0),  # start: inclusive
            act("steps", "INSERT", 3, 3, utcTime=1999, value=1.0),
            act("steps", "INSERT", 4, 4, utcTime=2000, value=1.0),  # end: exclusive
            act("moods", "INSERT", 5, 5, localTime="1970-01-01T00:00:01.500"),  # 1500 ms
            act("moods", "INSERT", 6, 6, localTime="1970-01-01T00:00:02.500"),  # 2500 ms
            act("notes", "INSERT", 7, 7, text="no time fields: the range is ignored"),
        ],
    )
    ranges = [TimeRange(t, 1000, 2000) for t in ("steps", "moods", "notes")]
    actions, _, _ = await read_all(db, filter=ReadFilter(time_ranges=ranges))
    assert [a.record_id for a in actions] == [rid(2), rid(3), rid(5), rid(7)]
    with pytest.raises(GatewayError) as caught:
        await read_all(db, filter=ReadFilter(time_ranges=[TimeRange("steps", 5, 4)]))
    assert caught.value.code == "BAD_USER_INPUT"


async def test_include_own_is_per_device_not_per_user(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 1, text="from the phone")], device="phone")
    await write(db, [act("notes", "INSERT", 2, 2, text="from the laptop")], device="laptop")
    on_laptop, _, _ = await read_all(db, device="laptop")
    assert [(a.record_id, a.source, a.device_id) for a in on_laptop] == [(rid(1), "local", "phone")]
    on_phone, _, _ = await read_all(db, device="phone", filter=ReadFilter(include_own=True))
    assert [(a.record_id, a.source) for a in on_phone] == [(rid(1), "remote"), (rid(2), "local")]
    anywhere, _, _ = await read_all(db)  # no device: nothing is "own"
    assert len(anywhere) == 2


async def test_own_actions_left_out_still_move_progress(db: Database) -> None:
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 6)], device="phone")
    actions, progress, _ = await read_all(db, device="phone", batch=2)
    assert actions == []
    await write(db, [act("notes", "INSERT", 9, 9, text="y")], device="laptop")
    later, _, _ = await read_all(db, device="phone", progress=progress)
    assert [a.record_id for a in later] == [rid(9)]


async def test_small_batches_over_a_few_thousand_actions_deliver_each_exactly_once(
    db: Database,
) -> None:
    rng = random.Random(7)
    tables = ["notes", "steps", "cases"]
    written = []
    for start in range(0, 2400, 800):
        batch = []
        for n in range(start, start + 800):
            table = rng.choice(tables)
            fields = {
                "notes": {"text": "t"},
                "steps": {"utcTime": n, "value": 1.0},
                "cases": {"caseKey": str(n)},
            }
            batch.append(act(table, "INSERT", n + 1, time=rng.randrange(10_000), **fields[table]))
            written.append((table, rid(n + 1)))
        await write(db, batch, device=rng.choice(["a", "b"]))
    actions, _, reads = await read_all(db, batch=13, filter=ReadFilter(include_own=True))
    assert sorted((a.table, a.record_id) for a in actions) == sorted(written)
    assert reads == 2400 // 13 + 1


async def test_server_cap_bounds_batches_and_has_more_tells_the_rest(db: Database) -> None:
    await write(db, [act("notes", "INSERT", n, n, text="x") for n in range(1, 8)])
    result = await read_actions(db, ALICE, ReadRequest(PROJECT, max_count=0), max_batch=3)
    assert (len(result.actions), result.has_more) == (3, True)
    _, _, reads = await read_all(db, max_batch=3)
    assert reads == 3


async def test_max_time_reads_a_prefix_and_never_skips_what_comes_after(db: Database) -> None:
    # device clocks are not in log order: times 10, 50, 20, 60, 30
    times = [10, 50, 20, 60, 30]
    await write(db, [act("notes", "INSERT", n, t, text="x") for n, t in enumerate(times, 1)])
    bounded, progress, _ = await read_all(db, max_time=20)
    assert [a.time for a in bounded] == [10]  # stops before 50: a prefix of the log
    rest, _, _ = await read_all(db, progress=progress, max_time=55)
    assert [a.time for a in rest] == [50, 20]
    tail, _, _ = await read_all(db, progress=progress)
    assert [a.time for a in tail] == [50, 20, 60, 30]


async def test_read_stats_counts_unmerged_actions_after_the_progress(db: Database) -> None:
    await write(
        db, [act("notes", "INSERT", 1, 100, text="a"), act("notes", "UPDATE", 1, 300, text="b")]
    )
    stats = await read_stats(db, ALICE, ReadRequest(PROJECT))
    assert (stats.count, stats.latest_time, stats.progress) == (2, 300, [])
    _, progress, _ = await read_all(db)
    await write(db, [act("steps", "INSERT", 2, 200, utcTime=1, value=2.0)])
    later = await read_stats(db, ALICE, ReadRequest(PROJECT, progress=progress))
    assert (later.count, later.latest_time) == (1, 200)
    assert sorted(p.table for p in later.progress) == sorted(progress)
    assert {p.table: p.cursor.encode() for p in later.progress} == progress
    none = await read_stats(
        db,
        ALICE,
        ReadRequest(PROJECT, progress=progress, filter=ReadFilter(exclude_tables=["steps"])),
    )
    assert (none.count, none.latest_time) == (0, None)


async def test_who_may_read_whose_data(db: Database) -> None:
    await write(db, [act("notes", "INSERT", 1, 1, text="alice's")], ALICE)
    with pytest.raises(GatewayError) as caught:
        await read_all(db, BOB, user="alice")
    assert caught.value.code == "FORBIDDEN"
    with pytest.raises(GatewayError) as caught:
        await read_all(db, CAROL, user="alice")
    assert caught.value.code == "FORBIDDEN"
    await grant_access(db, ALICE, PROJECT, "dr-carol")
    assert len((await read_all(db, CAROL, user="alice"))[0]) == 1
    assert len((await read_all(db, ADMIN, user="alice"))[0]) == 1
    assert (await read_all(db, BOB))[0] == []  # bob's own data: none, and not alice's


async def test_bad_read_input(db: Database) -> None:
    for request in (
        ReadRequest(PROJECT, max_count=-1),
        ReadRequest(PROJECT, progress={"notes": "garbage"}),
        ReadRequest(PROJECT, progress={"ghosts": "x"}),
    ):
        with pytest.raises(GatewayError) as caught:
            await read_actions(db, ALICE, request, max_batch=10)
        assert caught.value.code == "BAD_USER_INPUT"
    with pytest.raises(GatewayError) as caught:
        await read_actions(db, ALICE, ReadRequest("nope"), max_batch=10)
    assert caught.value.code == "NOT_FOUND"
