"""Runs the gateway records itself for a device's own sync: each write (COMPLETED with the
batch, or FAILED when refused), each read, and one run per live subscription. Over the real
server where the contract is GraphQL's, in the domain where a clock or a race is needed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gql import gql

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.errors import LimitExceeded
from gateway.live.hub import Hub
from gateway.live.stream import stream_actions
from gateway.sync import runs as domain
from gateway.sync.reader import ReadRequest
from gateway.sync.runs import SyncRunStatus
from gateway.sync.writer import WriteOutcome, WriteRequest, write_actions
from tests.support import GatewayServer, GraphQLHttp, error_code, settings_for
from tests.support.live import live_session, make_project, subscription, take
from tests.support.sync import (
    ADMIN,
    ALICE,
    BOB,
    PROJECT,
    RecordedEvents,
    act,
    make_study,
    read_all,
    write,
)

PROTOCOL = "graphql-transport-ws"
RUN_FIELDS = """id syncId status createdAt updatedAt completedAt errorCode errorMessage
  errorDetail fullSync syncTriggerReason { uiTag uiDetail } sourceRecordCount
  sourceRecordUpdates sourceRecordDeletes recordsProcessed recordsUpdated recordsFailed
  recordsInvalid sourceRecordInvalids"""
COUNTERS = (
    "sourceRecordCount", "sourceRecordUpdates", "sourceRecordDeletes", "recordsProcessed",
    "recordsUpdated", "recordsFailed", "recordsInvalid", "sourceRecordInvalids",
)  # fmt: skip
SYNCS = '{ syncs(project: "live") { id deviceId owner } }'
RUNS = f"""query($syncId: Int!) {{
  syncRuns(syncId: $syncId, perPage: 100, order: ASC) {{ data {{ {RUN_FIELDS} }} }}
}}"""
ALL_RUNS = '{ projectSyncRuns(project: "live", perPage: 100) { pagination { totalRecords } } }'
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String, $user: String,
                    $project: String! = "live") {
  writeActions(project: $project, actions: $actions, deviceId: $deviceId, user: $user) {
    accepted duplicates
  }
}"""
READ = """query($deviceId: String, $progress: [ProgressInput!]) {
  actions(project: "live", deviceId: $deviceId, progress: $progress) {
    actions { action recordId } progress { table cursor }
  }
}"""
WATCH = f'subscription {{ syncRunUpdated(project: "live") {{ {RUN_FIELDS} }} }}'


def action(kind: str, n: int, time: int, text: str | None = "x") -> dict[str, Any]:
    return {
        "table": "notes", "user": "alice", "action": kind, "recordId": f"{n:032x}",
        "time": time, "order": 0,
        "jsonData": None if kind == "DELETE" else json.dumps({"text": text} if text else {}),
    }  # fmt: skip


def counters(run: dict[str, Any]) -> tuple[int, ...]:
    return tuple(run[name] for name in COUNTERS)


def trigger(run: dict[str, Any]) -> tuple[str, str]:
    reason = run["syncTriggerReason"]
    return reason["uiTag"], reason["uiDetail"]


async def device_runs(admin: GraphQLHttp, device_id: str) -> list[dict[str, Any]]:
    """The runs of the device's own sync, oldest first (none before its first exchange)."""
    syncs = [s for s in (await admin.data(SYNCS))["syncs"] if s["deviceId"] == device_id]
    if not syncs:
        return []
    return (await admin.data(RUNS, syncId=syncs[0]["id"]))["syncRuns"]["data"]


async def total_runs(admin: GraphQLHttp) -> int:
    return (await admin.data(ALL_RUNS))["projectSyncRuns"]["pagination"]["totalRecords"]


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 15) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
async def clients(server: GatewayServer) -> tuple[GraphQLHttp, GraphQLHttp]:
    """(admin, alice) on project "live" with tables "notes" and "steps"."""
    await make_project(server)
    return server.client(server.token("root", Role.ADMIN)), server.client(
        server.token("alice", Role.PATIENT)
    )


async def test_device_writes_are_completed_runs_with_exact_counters(
    clients: tuple[GraphQLHttp, GraphQLHttp],
) -> None:
    admin, alice = clients
    first = [
        action("INSERT", 1, 100), action("INSERT", 2, 101), action("INSERT", 3, 102),
        action("UPDATE", 1, 103), action("DELETE", 2, 104),
    ]  # fmt: skip
    written = await alice.data(WRITE, actions=first, deviceId="phone")
    assert written["writeActions"] == {"accepted": [0, 1, 2, 3, 4], "duplicates": []}
    # a retry after a lost response, overlapping the first batch, with new actions
    retry = [
        *first[2:],
        action("UPDATE", 3, 105),
        action("INSERT", 4, 106),
        action("DELETE", 3, 107),
    ]
    written = await alice.data(WRITE, actions=retry, deviceId="phone")
    assert written["writeActions"] == {"accepted": [3, 4, 5], "duplicates": [0, 1, 2]}
    await alice.data(WRITE, actions=[action("INSERT", 9, 108)])  # no deviceId: no run

    batch, retried = await device_runs(admin, "phone")
    # count, updates, deletes, processed, updated, failed, invalid, source invalids
    assert counters(batch) == (5, 4, 1, 5, 5, 0, 0, 0)
    assert counters(retried) == (6, 4, 2, 6, 3, 0, 0, 0)
    for run in (batch, retried):
        assert (run["status"], run["fullSync"], run["errorCode"], run["errorDetail"]) == (
            "COMPLETED", False, None, None,
        )  # fmt: skip
        assert run["completedAt"] == run["updatedAt"] == run["createdAt"]
        assert trigger(run) == ("Device", "writeActions from device phone by alice for alice")
    assert await total_runs(admin) == 2


async def test_a_refused_batch_is_a_failed_run_and_a_forbidden_one_is_no_run(
    server: GatewayServer, clients: tuple[GraphQLHttp, GraphQLHttp]
) -> None:
    admin, alice = clients
    refused = [
        action("INSERT", 1, 100),
        {**action("INSERT", 2, 101), "table": "nope"},  # no such table
        action("INSERT", 3, 102, text=None),  # text is required
        action("DELETE", 4, 103),
    ]
    error = await alice.error(WRITE, actions=refused, deviceId="phone")
    assert error_code(error) == "TABLE_NOT_ALLOWED"  # the client's error, as ever
    invalid = error["extensions"]["invalidActions"]
    assert [(p["index"], p["code"]) for p in invalid] == [
        (1, "TABLE_NOT_ALLOWED"), (2, "VALIDATION_FAILED"),
    ]  # fmt: skip

    (run,) = await device_runs(admin, "phone")
    assert (run["status"], run["errorCode"], run["errorMessage"]) == (
        "FAILED", "TABLE_NOT_ALLOWED", error["message"],
    )  # fmt: skip
    assert json.loads(run["errorDetail"]) == invalid
    assert counters(run) == (4, 3, 1, 0, 0, 2, 2, 2)
    assert run["completedAt"] is not None
    assert trigger(run) == ("Device", "writeActions from device phone by alice for alice")

    # the same action written again with other content: refused as a CONFLICT, not invalid
    await alice.data(WRITE, actions=[action("INSERT", 1, 100)], deviceId="phone")
    error = await alice.error(WRITE, actions=[action("INSERT", 1, 100, "other")], deviceId="phone")
    assert error_code(error) == "CONFLICT"
    _, written, conflict = await device_runs(admin, "phone")
    assert (written["status"], counters(written)) == ("COMPLETED", (1, 1, 0, 1, 1, 0, 0, 0))
    assert (conflict["status"], conflict["errorCode"]) == ("FAILED", "CONFLICT")
    assert json.loads(conflict["errorDetail"]) == error["extensions"]["invalidActions"]
    assert counters(conflict) == (1, 1, 0, 0, 0, 1, 0, 0)

    # not the device's sync: bob may not write alice's data, and no such project
    bob = server.client(server.token("bob", Role.PATIENT))
    forbidden = await bob.error(WRITE, actions=refused, deviceId="bob-phone", user="alice")
    assert error_code(forbidden) == "FORBIDDEN"
    missing = await alice.error(WRITE, actions=refused, deviceId="phone", project="nope")
    assert error_code(missing) == "NOT_FOUND"
    assert await device_runs(admin, "bob-phone") == []
    assert await total_runs(admin) == 3


async def test_device_reads_are_runs_counted_before_and_after_merging(
    clients: tuple[GraphQLHttp, GraphQLHttp],
) -> None:
    admin, alice = clients
    await alice.data(
        WRITE, deviceId="phone",
        actions=[action("INSERT", 1, 100), action("UPDATE", 1, 101), action("INSERT", 2, 102)],
    )  # fmt: skip
    # A first sync: the two records from a snapshot (the log's three actions are not read).
    first = (await alice.data(READ, deviceId="laptop"))["actions"]
    assert [a["action"] for a in first["actions"]] == ["INSERT", "INSERT"]
    await alice.data(
        WRITE, deviceId="phone", actions=[action("UPDATE", 2, 103), action("DELETE", 1, 104)]
    )
    later = (await alice.data(READ, deviceId="laptop", progress=first["progress"]))["actions"]
    assert [a["action"] for a in later["actions"]] == ["UPDATE", "DELETE"]
    await alice.data(READ)  # no deviceId: no run

    full, incremental = await device_runs(admin, "laptop")
    assert (full["status"], full["fullSync"], counters(full)) == (
        "COMPLETED", True, (2, 2, 0, 2, 2, 0, 0, 0),
    )  # fmt: skip
    assert (incremental["status"], incremental["fullSync"], counters(incremental)) == (
        "COMPLETED", False, (2, 1, 1, 2, 2, 0, 0, 0),
    )  # fmt: skip
    assert trigger(full) == ("Device", "read from device laptop by alice for alice")
    assert await total_runs(admin) == 4  # two writes, two reads


async def test_a_live_subscription_is_one_run_kept_working_while_it_streams(
    migrated_url: str,
) -> None:
    # A run not updated for a second times out: the idle stream must keep refreshing it.
    settings = settings_for(migrated_url, sync_run_timeout_seconds=1.0, live_poll_seconds=300)
    with GatewayServer.running(settings) as server:
        await make_project(server)
        admin = server.client(server.token("root", Role.ADMIN))
        alice_token = server.token("alice", Role.PATIENT)
        alice = server.client(alice_token)

        async def live_run() -> dict[str, Any] | None:
            runs = await device_runs(admin, "tablet")
            return runs[0] if runs else None

        async with (
            live_session(server, alice_token, PROTOCOL) as session,
            subscription(session, deviceId="tablet") as stream,
            live_session(server, server.token("root", Role.ADMIN), PROTOCOL) as dashboard,
        ):
            # gql subscribes on the first read: the first batch is awaited while the run starts
            receiving = asyncio.create_task(take(stream, delivered(2)))
            started = await until(live_run, "the live run")
            assert (started["status"], started["fullSync"], counters(started)) == (
                "WORKING", True, (0,) * 8,
            )  # fmt: skip
            assert trigger(started) == (
                "Device", "live subscription from device tablet by alice for alice",
            )  # fmt: skip
            watch = dashboard.subscribe(gql(WATCH))
            try:  # (the tasks and generators are ended however the test ends)
                # the dashboard starts with the working run, then sees the device's runs change
                assert (await next_change(watch))["id"] == started["id"]
                await alice.data(
                    WRITE,
                    actions=[action("INSERT", 1, 1), action("INSERT", 2, 2)],
                    deviceId="phone",
                )
                await receiving
                # the phone's write run, and the live run counting what reached the tablet
                seen = await changes_until(
                    watch,
                    lambda runs: len(runs) == 2 and runs[started["id"]]["recordsProcessed"] == 2,
                )
                (phone_write,) = [r for i, r in seen.items() if i != started["id"]]
                assert (phone_write["status"], counters(phone_write)) == (
                    "COMPLETED", (2, 2, 0, 2, 2, 0, 0, 0),
                )  # fmt: skip
                streaming = await live_run()
                assert (streaming["status"], counters(streaming)) == (
                    "WORKING", (2, 2, 0, 2, 2, 0, 0, 0),
                )  # fmt: skip

                # the tablet writes during its live run: a run of its own, not SKIPPED
                await alice.data(WRITE, actions=[action("INSERT", 3, 3)], deviceId="tablet")
                assert [r["status"] for r in await device_runs(admin, "tablet")] == [
                    "WORKING", "COMPLETED",
                ]  # fmt: skip

                # idle for longer than the timeout: still WORKING, refreshed meanwhile
                last_change = at(streaming["updatedAt"])

                async def refreshed_past_timeout() -> bool:
                    run = await live_run()
                    assert run is not None and run["status"] == "WORKING", run
                    return (at(run["updatedAt"]) - last_change).total_seconds() > 1.5

                await until(refreshed_past_timeout, "the idle live run to be refreshed")

                await alice.data(WRITE, actions=[action("DELETE", 1, 4)], deviceId="phone")
                await take(stream, delivered(1))
                await until(lambda: has_processed(live_run, 3), "the third action to be counted")
            finally:
                receiving.cancel()
                await watch.aclose()
        # the client unsubscribed and disconnected: the run completes with its counters
        ended = await until(lambda: completed(live_run), "the live run to complete")
        assert counters(ended) == (3, 2, 1, 3, 3, 0, 0, 0)
        assert ended["completedAt"] is not None and ended["errorCode"] is None


def delivered(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda batches: sum(len(b["actions"]) for b in batches) == n


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def has_processed(live_run: Callable[[], Awaitable[dict[str, Any] | None]], n: int) -> bool:
    run = await live_run()
    return run is not None and run["recordsProcessed"] == n


async def completed(
    live_run: Callable[[], Awaitable[dict[str, Any] | None]],
) -> dict[str, Any] | None:
    run = await live_run()
    return run if run is not None and run["status"] == "COMPLETED" else None


async def next_change(watch: AsyncGenerator[dict[str, Any], None]) -> dict[str, Any]:
    async with asyncio.timeout(15):
        return (await anext(watch))["syncRunUpdated"]


async def changes_until(
    watch: AsyncGenerator[dict[str, Any], None],
    done: Callable[[dict[int, dict[str, Any]]], bool],
) -> dict[int, dict[str, Any]]:
    """Run changes from a syncRunUpdated subscription until the latest state of each run seen
    (by id) satisfies ``done``."""
    seen: dict[int, dict[str, Any]] = {}
    while not done(seen):
        run = await next_change(watch)
        seen[run["id"]] = run
    return seen


# ---- in the domain


async def test_a_batch_over_the_limit_is_a_failed_run_only_for_who_may_write(
    db: Database,
) -> None:
    await make_study(db)
    batch = [act("notes", "INSERT", n, n, text="x") for n in (1, 2)]
    batch.append(act("notes", "DELETE", 1, 3))
    events = RecordedEvents()
    announced = events.runs

    async def refused(principal: Principal, **request: Any) -> LimitExceeded:
        with pytest.raises(LimitExceeded) as error:
            await write_actions(
                db, principal, WriteRequest(PROJECT, batch, **request), max_batch=2,
                events=events,
            )  # fmt: skip
        return error.value

    error = await refused(ALICE, device_id="phone")
    (run,) = announced
    assert (run.status, run.error_code, run.error_message, run.error_detail) == (
        SyncRunStatus.FAILED, "LIMIT_EXCEEDED", error.message, None,
    )  # fmt: skip
    assert run.counters == {
        "source_record_count": 3, "records_failed": 3, "source_record_updates": 2,
        "source_record_deletes": 1, "source_record_invalids": 0, "records_invalid": 0,
        "records_processed": 0, "records_updated": 0,
    }  # fmt: skip
    assert await domain.get_run(db, ALICE, run.id) == run  # committed before it was announced

    # bob may not write alice's data: his refused batch is no run of anyone's sync
    await refused(BOB, user="alice", device_id="bob-phone")
    assert announced == [run]
    assert [s.device_id for s in await domain.list_syncs(db, ADMIN, PROJECT)] == ["phone"]


async def test_a_last_writer_wins_loser_is_processed_but_not_updated(db: Database) -> None:
    await make_study(db)
    await write(db, [act("notes", "INSERT", 1, 1_000, text="a")], device="phone")
    await read_all(db, device="laptop")  # the laptop sees the note, then edits it
    await write(db, [act("notes", "UPDATE", 1, 3_000, text="laptop")], device="laptop")
    # the phone edited it earlier, unaware of the laptop's edit, and syncs later: it loses
    outcome: WriteOutcome = await write(
        db,
        [
            act("notes", "UPDATE", 1, 2_000, text="phone"),
            act("notes", "INSERT", 2, 2_001, text="b"),
        ],
        device="phone",
    )
    assert (outcome.accepted, outcome.superseded) == ([0, 1], [0])
    assert outcome.run is not None
    processed = outcome.run.counters["records_processed"], outcome.run.counters["records_updated"]
    assert processed == (2, 1)


async def test_a_live_run_counts_each_batch_once_handed_on_and_stays_canceled(
    db: Database,
) -> None:
    """A batch is counted when the consumer asks for the next one (never before delivery);
    canceled while streaming, the run stays canceled and the stream goes on."""
    await make_study(db)
    hub, events = Hub(), RecordedEvents()
    announced = events.runs
    stream = stream_actions(
        db, hub, ALICE, ReadRequest(PROJECT, device_id="reader"),
        max_batch=100, poll_seconds=0.05, events=events,
    )  # fmt: skip

    async def deliver(n: int) -> None:
        await write(db, [act("notes", "INSERT", n, n, text="x")], device="writer")
        assert [a.time for a in (await asyncio.wait_for(anext(stream), 10)).actions] == [n]

    await deliver(1)
    (live,) = announced
    assert (live.status, live.full_sync, live.trigger.ui_tag) == (
        SyncRunStatus.WORKING, True, "Device",
    )  # fmt: skip
    await deliver(2)
    assert [(r.id, r.counters["records_processed"]) for r in announced] == [
        (live.id, 0), (live.id, 1),
    ]  # fmt: skip

    canceled = await domain.cancel_sync_run(db, ALICE, live.id)
    await deliver(3)
    await deliver(4)
    await stream.aclose()
    assert await domain.get_run(db, ALICE, live.id) == canceled
    assert len(announced) == 2


async def test_a_live_run_completes_when_the_server_shuts_down(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    with contextlib.ExitStack() as running:
        server = running.enter_context(GatewayServer.running(settings_for(url)))
        await make_project(server)
        admin = server.client(server.token("root", Role.ADMIN))
        token = server.token("alice", Role.PATIENT)
        async with (
            live_session(server, token, PROTOCOL) as session,
            subscription(session, deviceId="tablet") as stream,
        ):
            receiving = asyncio.create_task(anext(stream))  # gql subscribes on the first read
            await until(lambda: device_runs(admin, "tablet"), "the live run")
            running.close()  # the server shuts down under the open subscription
            with contextlib.suppress(Exception):
                await receiving
    db = Database(url)
    try:
        (run,) = (await domain.list_project_runs(db, ADMIN, "live")).runs
    finally:
        await db.dispose()
    assert (run.status, run.error_code) == (SyncRunStatus.COMPLETED, None)
