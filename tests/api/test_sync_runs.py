"""Syncs and sync runs over GraphQL against the real server: the lifecycle and its refusals,
Census's pagination, role rules, and the sweeper of the running app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, error_code, settings_for
from tests.support.live import make_project

RUN_FIELDS = """id syncId createdAt updatedAt completedAt errorCode errorMessage errorDetail status
  sourceRecordCount recordsFailed sourceRecordUpdates sourceRecordDeletes sourceRecordInvalids
  recordsInvalid recordsProcessed recordsUpdated scheduledExecutionTime fullSync
  syncTriggerReason { uiTag uiDetail } canceled currentStep"""
CREATE = """mutation($name: String!, $deviceId: String, $user: String) {
  createSync(project: "live", name: $name, deviceId: $deviceId, user: $user,
             direction: PUT, includeTables: ["notes"]) {
    id project name deviceId direction includeTables excludeTables owner createdBy
  }
}"""
START = f"""mutation($syncId: Int!, $at: DateTime, $full: Boolean! = false) {{
  startSyncRun(syncId: $syncId, fullSync: $full, scheduledExecutionTime: $at,
               syncTriggerReason: {{uiTag: "Manual", uiDetail: "Manually triggered by alice"}}) {{
    {RUN_FIELDS}
  }}
}}"""
RUN = f"query($id: Int!) {{ syncRun(id: $id) {{ {RUN_FIELDS} }} }}"
UPDATE = f"""mutation($id: Int!, $counters: SyncRunCounters, $step: String) {{
  updateSyncRun(id: $id, counters: $counters, currentStep: $step) {{ {RUN_FIELDS} }}
}}"""
COMPLETE = f"""mutation($id: Int!, $counters: SyncRunCounters) {{
  completeSyncRun(id: $id, counters: $counters) {{ {RUN_FIELDS} }}
}}"""
FAIL = f"""mutation($id: Int!) {{
  failSyncRun(id: $id, errorCode: "JSON_ARRAY_ERROR",
              errorMessage: "The array field being used does not appear to be valid JSON...",
              errorDetail: "Please make sure the field is formatted as a JSON Array") {{
    {RUN_FIELDS}
  }}
}}"""
CANCEL = f"mutation($id: Int!) {{ cancelSyncRun(id: $id) {{ {RUN_FIELDS} }} }}"
PAGE = """query($syncId: Int!, $page: Int! = 1, $perPage: Int! = 25, $order: SortOrder! = DESC) {
  syncRuns(syncId: $syncId, page: $page, perPage: $perPage, order: $order) {
    pagination { totalRecords perPage prevPage page nextPage lastPage }
    data { id status }
  }
}"""
PROJECT_RUNS = """query($status: SyncRunStatus, $perPage: Int! = 25) {
  projectSyncRuns(project: "live", status: $status, perPage: $perPage) {
    pagination { totalRecords } data { id syncId status }
  }
}"""
COUNTERS = {
    "sourceRecordCount": 15, "recordsFailed": 1, "sourceRecordUpdates": 12,
    "sourceRecordDeletes": 2, "sourceRecordInvalids": 1, "recordsInvalid": 1,
    "recordsProcessed": 14, "recordsUpdated": 13,
}  # fmt: skip


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    await make_project(server)
    return server.client(server.token("alice", Role.PATIENT))


async def new_sync(client: GraphQLHttp, name: str = "export", **variables: Any) -> int:
    return (await client.data(CREATE, name=name, **variables))["createSync"]["id"]


async def start(client: GraphQLHttp, sync_id: int, **variables: Any) -> dict[str, Any]:
    return (await client.data(START, syncId=sync_id, **variables))["startSyncRun"]


async def run_of(client: GraphQLHttp, run_id: int) -> dict[str, Any]:
    return (await client.data(RUN, id=run_id))["syncRun"]


async def test_the_lifecycle_and_every_impossible_transition(alice: GraphQLHttp) -> None:
    created = (await alice.data(CREATE, name="nightly export"))["createSync"]
    assert created | {"id": None} == {
        "id": None, "project": "live", "name": "nightly export", "deviceId": None,
        "direction": "PUT", "includeTables": ["notes"], "excludeTables": None,
        "owner": "alice", "createdBy": "alice",
    }  # fmt: skip
    sync_id = created["id"]

    working = await start(alice, sync_id, full=True)
    assert working | {"id": 0, "createdAt": None, "updatedAt": None} == {
        "id": 0, "syncId": sync_id, "createdAt": None, "updatedAt": None, "completedAt": None,
        "errorCode": None, "errorMessage": None, "errorDetail": None, "status": "WORKING",
        **dict.fromkeys(COUNTERS, 0), "scheduledExecutionTime": None, "fullSync": True,
        "syncTriggerReason": {"uiTag": "Manual", "uiDetail": "Manually triggered by alice"},
        "canceled": False, "currentStep": None,
    }  # fmt: skip
    skipped = await start(alice, sync_id)  # the first one still works
    assert (skipped["status"], skipped["completedAt"] is not None) == ("SKIPPED", True)

    updated = (
        await alice.data(UPDATE, id=working["id"], counters={"recordsProcessed": 5}, step="Sending")
    )["updateSyncRun"]
    assert (updated["status"], updated["recordsProcessed"], updated["currentStep"]) == (
        "WORKING", 5, "Sending",
    )  # fmt: skip
    assert updated["updatedAt"] > working["updatedAt"]
    completed = (await alice.data(COMPLETE, id=working["id"], counters=COUNTERS))["completeSyncRun"]
    assert {k: completed[k] for k in COUNTERS} == COUNTERS
    # A step only describes a run that is not finished (Census: "available if the sync is
    # not completed").
    assert (completed["status"], completed["currentStep"]) == ("COMPLETED", None)
    assert completed["completedAt"] == completed["updatedAt"]

    failing = await start(alice, sync_id)
    failed = (await alice.data(FAIL, id=failing["id"]))["failSyncRun"]
    assert (failed["status"], failed["errorCode"], failed["canceled"]) == (
        "FAILED", "JSON_ARRAY_ERROR", False,
    )  # fmt: skip
    assert failed["errorDetail"] == "Please make sure the field is formatted as a JSON Array"
    canceled = (await alice.data(CANCEL, id=(await start(alice, sync_id))["id"]))["cancelSyncRun"]
    assert (canceled["status"], canceled["canceled"], canceled["errorCode"]) == (
        "FAILED", True, "CANCELED",
    )  # fmt: skip
    assert canceled["errorMessage"] == "Canceled by alice"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    queued = await start(alice, sync_id, at=tomorrow)
    assert (queued["status"], queued["scheduledExecutionTime"]) == ("QUEUED", tomorrow)

    transitions = {
        "update": (UPDATE, {"counters": {"recordsFailed": 1}}),
        "complete": (COMPLETE, {}),
        "fail": (FAIL, {}),
        "cancel": (CANCEL, {}),
    }
    impossible = [
        *((run, t) for run in (completed, failed, canceled, skipped) for t in transitions),
        (queued, "update"),  # before its time
        (queued, "complete"),
    ]
    for run, transition in impossible:
        before = await run_of(alice, run["id"])
        query, variables = transitions[transition]
        error = await alice.error(query, id=run["id"], **variables)
        assert error_code(error) == "CONFLICT", (transition, run["status"], error)
        assert error["extensions"]["status"] == run["status"]
        assert await run_of(alice, run["id"]) == before, (transition, run["status"])

    # a queued run can still be canceled
    assert (await alice.data(CANCEL, id=queued["id"]))["cancelSyncRun"]["canceled"] is True


async def test_refused_input(alice: GraphQLHttp) -> None:
    sync_id = await new_sync(alice)
    run = await start(alice, sync_id)
    for query, variables, field in (
        (UPDATE, {"id": run["id"], "counters": {"recordsFailed": -1}}, "counters.recordsFailed"),
        (COMPLETE, {"id": run["id"], "counters": {"sourceRecordCount": -3}},
         "counters.sourceRecordCount"),
        (START, {"syncId": sync_id, "at": "2030-01-01T00:00:00"}, "scheduledExecutionTime"),
        (CREATE, {"name": " "}, "name"),
    ):  # fmt: skip
        error = await alice.error(query, **variables)
        assert (error_code(error), error["extensions"]["field"]) == ("BAD_USER_INPUT", field)
    assert await run_of(alice, run["id"]) == run
    unknown = await alice.error(
        'mutation { createSync(project: "live", name: "x", excludeTables: ["nope"]) { id } }'
    )
    assert error_code(unknown) == "BAD_USER_INPUT"
    assert error_code(await alice.error(RUN, id=999_999)) == "NOT_FOUND"
    assert error_code(await alice.error(PAGE, syncId=999_999)) == "NOT_FOUND"
    assert error_code(await alice.error(CANCEL, id=999_999)) == "NOT_FOUND"


async def test_census_pagination_of_14_runs(alice: GraphQLHttp) -> None:
    sync_id = await new_sync(alice)
    starts = " ".join(f"r{i}: startSyncRun(syncId: {sync_id}) {{ id }}" for i in range(14))
    created = await alice.data(f"mutation {{ {starts} }}")  # in order, one after the other
    ids = [created[f"r{i}"]["id"] for i in range(14)]

    async def page(**variables: Any) -> dict[str, Any]:
        return (await alice.data(PAGE, syncId=sync_id, perPage=5, **variables))["syncRuns"]

    for order, ordered in (("ASC", ids), ("DESC", ids[::-1])):
        pages = [await page(page=n, order=order) for n in (1, 2, 3)]
        assert [[r["id"] for r in p["data"]] for p in pages] == [
            ordered[0:5], ordered[5:10], ordered[10:14],
        ]  # fmt: skip
        assert [p["pagination"] for p in pages] == [
            {"totalRecords": 14, "perPage": 5, "prevPage": None, "page": 1, "nextPage": 2,
             "lastPage": 3},
            {"totalRecords": 14, "perPage": 5, "prevPage": 1, "page": 2, "nextPage": 3,
             "lastPage": 3},
            {"totalRecords": 14, "perPage": 5, "prevPage": 2, "page": 3, "nextPage": None,
             "lastPage": 3},
        ]  # fmt: skip
        assert await page(page=0, order=order) == pages[0]  # 0 means 1
    assert await page(page=4) == {
        "pagination": {"totalRecords": 14, "perPage": 5, "prevPage": 3, "page": 4,
                       "nextPage": None, "lastPage": 3},
        "data": [],
    }  # fmt: skip
    default = (await alice.data(PAGE, syncId=sync_id))["syncRuns"]  # DESC, 25 a page
    assert [r["id"] for r in default["data"]] == ids[::-1]
    assert default["pagination"]["perPage"] == 25
    for variables in ({"perPage": 101}, {"perPage": 0}, {"page": -1}):
        error = await alice.error(PAGE, syncId=sync_id, **variables)
        assert error_code(error) == "BAD_USER_INPUT", variables

    empty = (await alice.data(PAGE, syncId=await new_sync(alice, "idle")))["syncRuns"]
    assert empty == {
        "pagination": {"totalRecords": 0, "perPage": 25, "prevPage": None, "page": 1,
                       "nextPage": None, "lastPage": 1},
        "data": [],
    }  # fmt: skip
    # dashboards: the project's runs by status
    working = (await alice.data(PROJECT_RUNS, status="WORKING"))["projectSyncRuns"]
    assert [r["id"] for r in working["data"]] == [ids[0]]
    skipped = (await alice.data(PROJECT_RUNS, status="SKIPPED", perPage=5))["projectSyncRuns"]
    assert skipped["pagination"]["totalRecords"] == 13
    assert [r["id"] for r in skipped["data"]] == ids[:-6:-1]


async def test_patients_see_their_own_professionals_what_was_granted_admins_all(
    server: GatewayServer, alice: GraphQLHttp
) -> None:
    bob = server.client(server.token("bob", Role.PATIENT))
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    admin = server.client(server.token("root", Role.ADMIN))
    alices = await new_sync(alice, "alice's export")
    bobs = await new_sync(bob, "bob's export")
    alice_run = await start(alice, alices)
    bob_run = await start(bob, bobs)
    syncs = '{ syncs(project: "live") { id owner } }'

    assert (await alice.data(syncs))["syncs"] == [{"id": alices, "owner": "alice"}]
    ids = [r["id"] for r in (await alice.data(PROJECT_RUNS))["projectSyncRuns"]["data"]]
    assert ids == [alice_run["id"]]
    for query, variables in (
        ("query($id: Int!) { sync(id: $id) { id } }", {"id": bobs}),
        (RUN, {"id": bob_run["id"]}),
        (PAGE, {"syncId": bobs}),
        (COMPLETE, {"id": bob_run["id"]}),
        (START, {"syncId": bobs}),
    ):  # someone else's ids are unknown ids
        assert error_code(await alice.error(query, **variables)) == "NOT_FOUND", query
    error = await bob.error(CREATE, name="for alice", user="alice")
    assert error_code(error) == "FORBIDDEN"

    assert error_code(await carol.error(RUN, id=alice_run["id"])) == "NOT_FOUND"
    await alice.data('mutation { grantAccess(project: "live", grantee: "dr-carol") { grantee } }')
    assert (await carol.data(RUN, id=alice_run["id"]))["syncRun"] == alice_run
    assert error_code(await carol.error(COMPLETE, id=alice_run["id"])) == "FORBIDDEN"

    assert [s["id"] for s in (await admin.data(syncs))["syncs"]] == [alices, bobs]
    every = (await admin.data(PROJECT_RUNS))["projectSyncRuns"]["data"]
    assert [r["id"] for r in every] == [bob_run["id"], alice_run["id"]]
    done = (await admin.data(COMPLETE, id=bob_run["id"]))["completeSyncRun"]
    assert done["status"] == "COMPLETED"
    for_bob = await admin.data(CREATE, name="by admin", deviceId="bob-phone", user="bob")
    assert (for_bob["createSync"]["owner"], for_bob["createSync"]["createdBy"]) == ("bob", "root")


@pytest.fixture
def impatient_server(migrated_url: str) -> Iterator[GatewayServer]:
    """A gateway that fails runs after 0.3 s without an update (and sweeps every 0.075 s)."""
    with GatewayServer.running(settings_for(migrated_url, sync_run_timeout_seconds=0.3)) as s:
        yield s


async def test_the_running_gateway_times_out_runs_and_starts_queued_ones(
    impatient_server: GatewayServer,
) -> None:
    await make_project(impatient_server)
    alice = impatient_server.client(impatient_server.token("alice", Role.PATIENT))
    stalled = await start(alice, await new_sync(alice, "stalls"))
    soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    queued = await start(alice, await new_sync(alice, "later"), at=soon)
    assert queued["status"] == "QUEUED"
    async with asyncio.timeout(10):
        while True:
            runs = [await run_of(alice, r["id"]) for r in (stalled, queued)]
            if all(r["status"] == "FAILED" for r in runs):
                break
            await asyncio.sleep(0.05)
    for run in runs:  # only a WORKING run times out: the queued one was started first
        assert (run["errorCode"], run["errorMessage"]) == (
            "RUN_TIMEOUT", "No update for 0.3 seconds: the gateway failed the run.",
        )  # fmt: skip


async def test_the_running_gateway_prunes_finished_runs_past_their_retention(
    migrated_url: str,
) -> None:
    # About 0.4 s of retention, swept every 0.075 s.
    settings = settings_for(
        migrated_url, sync_run_timeout_seconds=0.3, sync_run_retention_days=0.4 / 86_400
    )
    with GatewayServer.running(settings) as server:
        await make_project(server)
        alice = server.client(server.token("alice", Role.PATIENT))
        sync_id = await new_sync(alice)
        finished = await start(alice, sync_id)
        await alice.data(COMPLETE, id=finished["id"])
        async with asyncio.timeout(10):
            while True:
                body = await alice.execute(RUN, id=finished["id"])
                if not body.get("data"):
                    break
                await asyncio.sleep(0.05)
        assert error_code(body["errors"][0]) == "NOT_FOUND"
