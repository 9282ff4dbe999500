"""What is pending towards devices: CSPro's casesPendingSync and caseStatus, device health."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, GraphQLHttp, create_project, error_code, settings_for

WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "census", actions: $actions, deviceId: $deviceId) { accepted }
}"""
READ = """query($deviceId: String!, $maxCount: Int! = 0, $progress: [ProgressInput!]) {
  actions(project: "census", deviceId: $deviceId, maxCount: $maxCount, progress: $progress) {
    actions { recordId } progress { table cursor } hasMore
  }
}"""
PENDING = """query($device: String!) {
  casesPendingSync(project: "census", deviceName: $device) {
    edges { node { key position uuid } } pageInfo { hasNextPage }
  }
  syncSummary(project: "census", deviceName: $device) { casesPendingSync }
}"""
CASE = """query($key: String!, $device: String!) {
  caseStatus(project: "census", key: $key, deviceName: $device) {
    key position uuid syncHistory { deviceId direction }
  }
}"""
DEVICES = '{ devices(project: "census") { deviceId status pendingUp pendingDown } }'
CASES = {
    1: ("4480489263333", "48e6b01e-734b-4cdb-b30d-fbcd2ea104e3"),
    2: ("4480489263555", "38ed23c6-1967-465a-8011-00287bc9792b"),
    3: ("4480489263666", "49720a7c-945c-49e5-b888-12dfde1810ff"),
}


def case(n: int, kind: str = "INSERT", time: int = 1, **data: Any) -> dict[str, Any]:
    key, uuid = CASES[n]
    return {
        "table": "households", "user": "jackw", "action": kind, "recordId": uuid,
        "time": time, "order": n, "jsonData": json.dumps({"caseKey": key, **data}),
    }  # fmt: skip


async def census(server: GatewayServer) -> GraphQLHttp:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "census", "Census")
    await admin.data(
        """mutation { defineTable(project: "census", name: "households", keyField: "caseKey",
             fields: [{name: "caseKey", type: STRING, required: true},
                      {name: "members", type: INT}]) { name } }"""
    )
    return server.client(server.token("jackw", Role.PATIENT))


@pytest.fixture
async def jack(server: GatewayServer) -> GraphQLHttp:
    return await census(server)


def pending(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["node"]["key"], e["node"]["uuid"]) for e in data["casesPendingSync"]["edges"]}


def cursors(read: dict[str, Any]) -> list[dict[str, str]]:
    return [{"table": p["table"], "cursor": p["cursor"]} for p in read["actions"]["progress"]]


async def test_cases_pending_towards_a_device_and_their_status(jack: GraphQLHttp) -> None:
    await jack.data(
        'mutation { reportDevice(project: "census", deviceId: "csweb", '
        'name: "https://example.org/csweb/api/") { deviceId } }'
    )
    # The server's first sync, while there is nothing yet: its later reads come from the log.
    # (Part way through a first sync's snapshot nothing counts as delivered until it is done.)
    start = await jack.data(READ, deviceId="csweb")
    await jack.data(WRITE, actions=[case(n, members=n) for n in (1, 2, 3)], deviceId="tablet")
    server_view = await jack.data(PENDING, device="https://example.org/csweb/api/")
    assert pending(server_view) == {CASES[1], CASES[2], CASES[3]}
    assert server_view["syncSummary"]["casesPendingSync"] == 3
    assert pending(await jack.data(PENDING, device="tablet")) == set()  # its own cases

    waiting = (await jack.data(CASE, key=CASES[3][0], device="csweb"))["caseStatus"]
    assert (waiting["uuid"], waiting["syncHistory"]) == (CASES[3][1], [])
    before = await jack.data(READ, deviceId="csweb", progress=cursors(start), maxCount=2)
    arrived = {r["recordId"] for r in before["actions"]["actions"]}
    still = {c for c in CASES.values() if c[1].replace("-", "") not in arrived}
    assert len(still) == 1
    assert pending(await jack.data(PENDING, device="csweb")) == still
    after = await jack.data(READ, deviceId="csweb", progress=cursors(before))
    assert pending(await jack.data(PENDING, device="csweb")) == set()
    synced = (await jack.data(CASE, key=CASES[3][0], device="csweb"))["caseStatus"]
    assert synced["syncHistory"] == [{"deviceId": "csweb", "direction": "GET"}]
    put = (await jack.data(CASE, key=CASES[3][0], device="tablet"))["caseStatus"]
    assert put["syncHistory"] == [{"deviceId": "tablet", "direction": "PUT"}]

    # the tablet changes a case: its new version is pending towards the server again
    await jack.data(WRITE, actions=[case(2, "UPDATE", time=5, members=9)], deviceId="tablet")
    changed = await jack.data(PENDING, device="csweb")
    assert pending(changed) == {CASES[2]}
    assert changed["casesPendingSync"]["edges"][0]["node"]["position"] > synced["position"]

    # the server says it applied only what its first read brought: pending is counted from there
    ack = """mutation($progress: [ProgressInput!]!) {
      acknowledgeProgress(project: "census", deviceId: "csweb", progress: $progress) }"""
    await jack.data(ack, progress=cursors(before))
    assert pending(await jack.data(PENDING, device="csweb")) == still | {CASES[2]}
    assert cursors(after)  # the later progress is still a valid cursor to continue from


async def test_device_statuses_of_a_regardingwork_like_user(migrated_url: str) -> None:
    settings: Settings = settings_for(
        migrated_url, device_stale_seconds=0.5, device_offline_seconds=1.5
    )
    with GatewayServer.running(settings) as server:
        jack = await census(server)
        report = 'mutation($id: String!, $up: Int) { reportDevice(project: "census", deviceId: $id, pendingUp: $up) { deviceId } }'  # noqa: E501
        await jack.data(report, id="windows-app-v1.1.0")
        await jack.data(
            'mutation { recordSyncEvent(project: "census", deviceId: "windows-app-v1.1.0", '
            "direction: PUT) { direction } }"
        )
        await jack.data(report, id="old-tablet")
        await asyncio.sleep(1.6)  # the old tablet goes quiet past the offline threshold
        await jack.data(WRITE, actions=[case(1)], deviceId="mac-app-v1.2.3")
        await jack.data(READ, deviceId="mac-app-v1.2.3")
        await jack.data(report, id="windows-app-v1.1.0", up=2)  # seen now, last sync long ago
        statuses = {d["deviceId"]: d for d in (await jack.data(DEVICES))["devices"]}
        assert {k: v["status"] for k, v in statuses.items()} == {
            "mac-app-v1.2.3": "UP_TO_DATE",
            "windows-app-v1.1.0": "STALE",
            "old-tablet": "OFFLINE",
        }
        assert statuses["windows-app-v1.1.0"]["pendingUp"] == 2
        assert statuses["windows-app-v1.1.0"]["pendingDown"] == 1  # the mac's case
        stale = await jack.data('{ devices(project: "census", status: STALE) { deviceId } }')
        assert stale["devices"] == [{"deviceId": "windows-app-v1.1.0"}]
        await jack.data(READ, deviceId="windows-app-v1.1.0")  # it syncs: pending up remains
        after = {d["deviceId"]: d["status"] for d in (await jack.data(DEVICES))["devices"]}
        assert after["windows-app-v1.1.0"] == "PENDING"


async def test_pending_and_case_errors(jack: GraphQLHttp, server: GatewayServer) -> None:
    assert error_code(await jack.error(PENDING, device="nobody")) == "NOT_FOUND"
    await jack.data(WRITE, actions=[case(1)], deviceId="tablet")
    assert error_code(await jack.error(CASE, key="nope", device="tablet")) == "NOT_FOUND"
    bob = server.client(server.token("bob", Role.PATIENT))
    assert error_code(await bob.error(PENDING, device="tablet")) == "NOT_FOUND"  # not his
    bad_ack = """mutation { acknowledgeProgress(project: "census", deviceId: "tablet",
                 progress: [{table: "households", cursor: "garbage"}]) }"""
    assert error_code(await jack.error(bad_ack)) == "BAD_USER_INPUT"
