"""Devices and sync history over GraphQL, rebuilding CSPro's getSyncStatus examples."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, error_code
from tests.support.live import make_project, write_notes

CSWEB = "588850ce-330b-4afd-8282-7603e955a7a3"
OLD_NAME, NEW_NAME = "http://localhost/csweb81/api/", "https://example.org/csweb/api/"
READ = """query($deviceId: String, $maxCount: Int! = 0, $progress: [ProgressInput!]) {
  actions(project: "live", deviceId: $deviceId, maxCount: $maxCount, progress: $progress) {
    hasMore progress { table cursor }
  }
}"""
HISTORY = """query(
  $deviceName: String, $direction: SyncDirection, $first: Int! = 50, $after: String
) {
  syncHistory(project: "live", deviceName: $deviceName, direction: $direction, first: $first,
              after: $after) {
    edges { cursor node { deviceId deviceName username user universe direction partial time } }
    pageInfo { hasNextPage endCursor }
  }
}"""
REPORT = """mutation($id: String!, $name: String, $type: String, $version: String, $pending: Int) {
  reportDevice(project: "live", deviceId: $id, name: $name, type: $type, version: $version,
               pendingUp: $pending) {
    deviceId deviceNames deviceType version owner pendingUp firstSeen lastSeen
  }
}"""


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    await make_project(server)
    return server.client(server.token("alice", Role.PATIENT))


def nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in data["syncHistory"]["edges"]]


async def test_a_device_with_two_names_and_a_dropbox_like_service(alice: GraphQLHttp) -> None:
    await alice.data(REPORT, id=CSWEB, name=OLD_NAME, type="csweb", version="8.1")
    await write_notes(alice, [1], device=CSWEB)  # PUT as the old name
    reported = await alice.data(REPORT, id=CSWEB, name=NEW_NAME, version="8.2", pending=3)
    assert reported["reportDevice"] | {"firstSeen": None, "lastSeen": None} == {
        "deviceId": CSWEB, "deviceNames": [OLD_NAME, NEW_NAME], "deviceType": "csweb",
        "version": "8.2", "owner": "alice", "pendingUp": 3, "firstSeen": None, "lastSeen": None,
    }  # fmt: skip
    await write_notes(alice, [2], device=CSWEB)  # PUT as the new name
    await alice.data(
        """mutation { recordSyncEvent(project: "live", deviceId: "Dropbox", deviceName: "Dropbox",
             direction: GET) { deviceName direction } }"""
    )
    services = (await alice.data("{ syncServices(project: \"live\") { deviceId deviceNames "
                                 "firstSyncTime lastSyncTime } }"))["syncServices"]  # fmt: skip
    assert [(s["deviceId"], s["deviceNames"]) for s in services] == [
        (CSWEB, [OLD_NAME, NEW_NAME]),
        ("Dropbox", ["Dropbox"]),
    ]
    assert services[0]["firstSyncTime"] < services[0]["lastSyncTime"]
    history = nodes(await alice.data(HISTORY))
    assert [(e["deviceName"], e["direction"]) for e in history] == [
        ("Dropbox", "GET"),
        (NEW_NAME, "PUT"),
        (OLD_NAME, "PUT"),
    ]  # newest first
    # the device is found by any name it had
    by_old_name = nodes(await alice.data(HISTORY, deviceName=OLD_NAME))
    assert [e["deviceName"] for e in by_old_name] == [NEW_NAME, OLD_NAME]


async def test_puts_gets_partial_and_the_summary(server: GatewayServer, alice: GraphQLHttp) -> None:
    await write_notes(alice, [1, 2, 3], device="phone")
    progress = None
    for max_count in (2, 0, 0):  # partial (one more waits), the rest, nothing new (no GET)
        read = await alice.data(READ, deviceId="laptop", maxCount=max_count, progress=progress)
        progress = [
            {"table": p["table"], "cursor": p["cursor"]} for p in read["actions"]["progress"]
        ]
    history = nodes(await alice.data(HISTORY))
    assert [(e["deviceId"], e["direction"], e["partial"]) for e in history] == [
        ("laptop", "GET", False),
        ("laptop", "GET", True),
        ("phone", "PUT", False),
    ]
    assert {(e["username"], e["user"], e["universe"]) for e in history} == {("alice", "alice", "")}
    summary = await alice.data(
        '{ syncSummary(project: "live") { lastPut { deviceId } lastGet { deviceId partial } } }'
    )
    assert summary["syncSummary"] == {
        "lastPut": {"deviceId": "phone"},
        "lastGet": {"deviceId": "laptop", "partial": False},
    }
    phone_only = await alice.data(
        '{ syncSummary(project: "live", deviceName: "phone") '
        "{ lastPut { deviceId } lastGet { deviceId } } }"
    )
    assert phone_only["syncSummary"] == {"lastPut": {"deviceId": "phone"}, "lastGet": None}
    gets = nodes(await alice.data(HISTORY, direction="GET", first=1))
    assert [e["partial"] for e in gets] == [False]


async def test_history_pages_newest_first(alice: GraphQLHttp) -> None:
    for n in range(1, 6):
        await write_notes(alice, [n], device="phone")
    seen, after = [], None
    while True:
        page = (await alice.data(HISTORY, first=2, after=after))["syncHistory"]
        seen += [e["node"]["time"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)


async def test_devices_are_registered_on_first_use_and_seen_only_by_whom_they_concern(
    server: GatewayServer, alice: GraphQLHttp
) -> None:
    await write_notes(alice, [1], device="alice-phone")
    await alice.data(READ, deviceId="alice-laptop")
    bob = server.client(server.token("bob", Role.PATIENT))
    await write_notes(bob, [2], device="bob-phone", user="bob")
    devices = '{ devices(project: "live") { deviceId owner } }'
    assert (await alice.data(devices))["devices"] == [
        {"deviceId": "alice-laptop", "owner": "alice"},
        {"deviceId": "alice-phone", "owner": "alice"},
    ]
    assert [d["deviceId"] for d in (await bob.data(devices))["devices"]] == ["bob-phone"]
    assert [e["deviceId"] for e in nodes(await bob.data(HISTORY))] == ["bob-phone"]
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    assert (await carol.data(devices))["devices"] == []
    await alice.data('mutation { grantAccess(project: "live", grantee: "dr-carol") { user } }')
    assert len((await carol.data(devices))["devices"]) == 2
    admin = server.client(server.token("root", Role.ADMIN))
    assert len((await admin.data(devices))["devices"]) == 3
    one = '{ device(project: "live", deviceId: "alice-phone") { owner } }'
    assert (await alice.data(one))["device"] == {"owner": "alice"}
    assert (await bob.data(one))["device"] is None


async def test_bad_device_and_history_input(alice: GraphQLHttp) -> None:
    assert error_code(await alice.error(REPORT, id="d", pending=-1)) == "BAD_USER_INPUT"
    assert error_code(await alice.error(REPORT, id="")) == "BAD_USER_INPUT"
    assert error_code(await alice.error(REPORT, id="d", name="n" * 256)) == "BAD_USER_INPUT"
    assert error_code(await alice.error(HISTORY, deviceName="nobody")) == "NOT_FOUND"
    assert error_code(await alice.error(HISTORY, first=501)) == "BAD_USER_INPUT"
    assert error_code(await alice.error(HISTORY, after="garbage")) == "BAD_USER_INPUT"
    bob_device = await alice.error(
        'mutation { reportDevice(project: "live", deviceId: "x", user: "bob") { deviceId } }'
    )
    assert error_code(bob_device) == "FORBIDDEN"
