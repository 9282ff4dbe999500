"""Conflicts over GraphQL: RegardingWork's overlapping sessions edited on two devices, under
each table policy, and their review."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, create_project, error_code

SESSION = f"{7:032x}"
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "timer", actions: $actions, deviceId: $deviceId) { accepted duplicates }
}"""
READ = """query($deviceId: String, $progress: [ProgressInput!]) {
  actions(project: "timer", deviceId: $deviceId, progress: $progress) {
    actions { action recordId data deviceId position time }
    progress { table cursor }
  }
}"""
RECORD = """{ records(project: "timer", table: "sessions", includeDeleted: true) {
  edges { node { recordId data deleted position deviceId } } } }"""
CONFLICTS = """query($status: ConflictStatus, $user: String) {
  conflicts(project: "timer", status: $status, user: $user) { edges { node {
    id table user recordId key type policy status devices resolution resolvedBy
    winner { deviceId action time order position data }
    loser { deviceId action time order position data }
  } } }
}"""
RESOLVE = """mutation($id: Int!, $resolution: ConflictResolution!) {
  resolveConflict(id: $id, resolution: $resolution) { id status resolution resolvedBy }
}"""


class Device:
    """One of alice's devices: writes and reads, keeping its progress like an app would."""

    def __init__(self, client: GraphQLHttp, device_id: str) -> None:
        self.client = client
        self.device_id = device_id
        self.progress: list[dict[str, str]] | None = None

    def action(self, kind: str, time: int, **fields: Any) -> dict[str, Any]:
        return {
            "table": "sessions", "user": "alice", "action": kind, "recordId": SESSION,
            "time": time, "order": 0, "jsonData": json.dumps(fields) if fields else None,
        }  # fmt: skip

    async def send(self, *actions: dict[str, Any]) -> dict[str, Any]:
        body = await self.client.execute(WRITE, actions=list(actions), deviceId=self.device_id)
        return body

    async def write(self, *actions: dict[str, Any]) -> dict[str, Any]:
        body = await self.send(*actions)
        assert not body.get("errors"), body["errors"]
        return body["data"]["writeActions"]

    async def read(self) -> list[dict[str, Any]]:
        data = await self.client.data(READ, deviceId=self.device_id, progress=self.progress)
        self.progress = data["actions"]["progress"]
        return data["actions"]["actions"]


async def make_timer(server: GatewayServer, policy: str) -> GraphQLHttp:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "timer", "Timer")
    defined = await admin.data(
        """mutation($policy: ConflictPolicy!) { defineTable(project: "timer", name: "sessions",
             fields: [{name: "start", type: INT, required: true}, {name: "end", type: INT}],
             conflictPolicy: $policy) { conflictPolicy } }""",
        policy=policy,
    )
    assert defined["defineTable"]["conflictPolicy"] == policy
    return admin


async def overlap(server: GatewayServer, policy: str) -> tuple[Device, Device, GraphQLHttp]:
    """The mac app records a session; the web timer receives it; both devices are current."""
    await make_timer(server, policy)
    alice = server.client(server.token("alice", Role.PATIENT))
    mac, web = Device(alice, "mac_app"), Device(alice, "web_timer")
    await mac.write(mac.action("INSERT", 1_000, start=0, end=5))
    assert [a["action"] for a in await web.read()] == ["INSERT"]
    assert await mac.read() == []
    return mac, web, alice


async def record(client: GraphQLHttp) -> dict[str, Any]:
    (edge,) = (await client.data(RECORD))["records"]["edges"]
    return edge["node"]


async def conflicts(client: GraphQLHttp, **variables: Any) -> list[dict[str, Any]]:
    data = await client.data(CONFLICTS, **variables)
    return [e["node"] for e in data["conflicts"]["edges"]]


async def test_last_writer_wins_keeps_the_later_edit_everywhere(server: GatewayServer) -> None:
    mac, web, alice = await overlap(server, "LAST_WRITER_WINS")
    await web.write(web.action("UPDATE", 3_000, end=10))
    # The mac edited the session before the web did, but syncs later, unaware of the web edit.
    stale = mac.action("UPDATE", 2_000, end=20)
    assert await mac.write(stale) == {"accepted": [0], "duplicates": []}

    assert (await record(alice))["data"]["end"] == 10
    assert (await record(alice))["deviceId"] == "web_timer"
    assert await web.read() == []  # the losing edit never reaches the web timer
    (received,) = await mac.read()  # the mac receives the winner and ends where the web is
    assert (received["action"], received["data"]["end"]) == ("UPDATE", 10)

    (conflict,) = await conflicts(alice)
    assert conflict | {"id": None, "winner": None, "loser": None} == {
        "id": None, "table": "sessions", "user": "alice", "recordId": SESSION, "key": SESSION,
        "type": "CONCURRENT_UPDATE", "policy": "LAST_WRITER_WINS", "status": "OPEN",
        "devices": ["web_timer", "mac_app"], "resolution": None, "resolvedBy": None,
        "winner": None, "loser": None,
    }  # fmt: skip
    assert conflict["winner"]["deviceId"] == "web_timer"
    assert (conflict["winner"]["time"], conflict["winner"]["data"]) == (3_000, {"end": 10})
    assert conflict["winner"]["position"] == received["position"]
    assert conflict["loser"]["deviceId"] == "mac_app"
    assert (conflict["loser"]["time"], conflict["loser"]["data"]) == (2_000, {"end": 20})

    # The mac retries the batch (a lost response): the superseded action is found, not redone.
    assert await mac.write(stale) == {"accepted": [], "duplicates": [0]}
    assert len(await conflicts(alice)) == 1


async def test_last_writer_wins_applies_a_later_edit_that_arrives_last(
    server: GatewayServer,
) -> None:
    mac, web, alice = await overlap(server, "LAST_WRITER_WINS")
    await web.write(web.action("UPDATE", 3_000, end=10))
    await mac.write(mac.action("UPDATE", 4_000, end=20))

    assert (await record(alice))["data"] == {"start": 0, "end": 20}
    (received,) = await web.read()
    assert received["data"]["end"] == 20
    (conflict,) = await conflicts(alice)
    assert (conflict["winner"]["deviceId"], conflict["loser"]["deviceId"]) == (
        "mac_app",
        "web_timer",
    )
    assert conflict["winner"]["position"] == received["position"]


async def test_reject_refuses_the_batch_with_the_current_record(server: GatewayServer) -> None:
    mac, web, alice = await overlap(server, "REJECT")
    await web.write(web.action("UPDATE", 3_000, end=10))
    current = await record(alice)

    body = await mac.send(
        mac.action("UPDATE", 2_000, end=20),
        {**mac.action("INSERT", 2_001, start=9), "recordId": f"{8:032x}"},
    )
    (error,) = body["errors"]
    assert error_code(error) == "CONFLICT"
    assert error["extensions"]["currentRecord"] == {
        "table": "sessions", "recordId": SESSION, "key": SESSION, "data": {"start": 0, "end": 10},
        "deleted": False, "position": current["position"], "deviceId": "web_timer",
    }  # fmt: skip
    (refused,) = error["extensions"]["invalidActions"]
    assert (refused["index"], refused["code"], refused["conflict"]) == (
        0,
        "CONFLICT",
        "CONCURRENT_UPDATE",
    )
    # Nothing of the batch was written, nothing was recorded.
    assert await record(alice) == current
    assert await web.read() == []
    assert await conflicts(alice) == []

    # The mac rebases: it reads the web's edit, then its change goes through.
    assert [a["data"]["end"] for a in await mac.read()] == [10]
    await mac.write(mac.action("UPDATE", 5_000, end=20))
    assert (await record(alice))["data"]["end"] == 20


async def test_a_base_version_detects_changes_a_frontend_did_not_see(
    server: GatewayServer,
) -> None:
    mac, web, alice = await overlap(server, "REJECT")
    seen = (await record(alice))["position"]
    await web.write(web.action("UPDATE", 3_000, end=10))
    latest = (await record(alice))["position"]
    # A dashboard writes without a deviceId; its baseVersion says which version it edited.
    edit = {**mac.action("UPDATE", 4_000, end=30), "baseVersion": seen}
    body = await alice.execute(WRITE, actions=[edit])
    assert error_code(body["errors"][0]) == "CONFLICT"
    await alice.data(WRITE, actions=[{**edit, "baseVersion": latest}])
    assert (await record(alice))["data"]["end"] == 30


async def test_update_after_delete_then_apply_the_loser(server: GatewayServer) -> None:
    mac, web, alice = await overlap(server, "LAST_WRITER_WINS")
    await web.write(web.action("DELETE", 3_000))
    await mac.write(mac.action("UPDATE", 2_000, end=20))
    assert (await record(alice))["deleted"] is True
    assert await web.read() == []

    (conflict,) = await conflicts(alice)
    assert (conflict["type"], conflict["winner"]["action"], conflict["loser"]["action"]) == (
        "UPDATE_AFTER_DELETE",
        "DELETE",
        "UPDATE",
    )
    resolved = await alice.data(RESOLVE, id=conflict["id"], resolution="APPLY_LOSER")
    assert resolved["resolveConflict"] == {
        "id": conflict["id"], "status": "RESOLVED", "resolution": "APPLY_LOSER",
        "resolvedBy": "alice",
    }  # fmt: skip
    # The session is back as the mac had it, and both devices receive it.
    assert (await record(alice))["deleted"] is False
    assert (await record(alice))["data"] == {"start": 0, "end": 20}
    (back,) = await web.read()
    assert (back["action"], back["data"]["end"]) == ("INSERT", 20)
    # The mac had not yet received the delete: it gets both, and ends on the same record.
    assert [(a["action"], a["data"]) for a in await mac.read()] == [
        ("DELETE", None),
        ("INSERT", {"start": 0, "end": 20}),
    ]
    again = await alice.error(RESOLVE, id=conflict["id"], resolution="KEEP_WINNER")
    assert error_code(again) == "CONFLICT"


async def test_an_update_after_delete_that_comes_later_brings_the_record_back(
    server: GatewayServer,
) -> None:
    mac, web, alice = await overlap(server, "LAST_WRITER_WINS")
    await web.write(web.action("DELETE", 3_000))
    await mac.write(mac.action("UPDATE", 4_000, end=20))
    assert (await record(alice))["deleted"] is False
    assert (await record(alice))["data"] == {"start": 0, "end": 20}
    assert [c["type"] for c in await conflicts(alice)] == ["UPDATE_AFTER_DELETE"]


async def test_two_devices_deleting_a_record_is_not_a_conflict(server: GatewayServer) -> None:
    mac, web, alice = await overlap(server, "REJECT")
    await web.write(web.action("DELETE", 3_000))
    assert await mac.write(mac.action("DELETE", 2_000)) == {"accepted": [0], "duplicates": []}
    assert await web.read() == []
    assert await conflicts(alice) == []
    # A device deleting a record it deleted itself is still refused.
    body = await web.send(web.action("DELETE", 5_000))
    assert error_code(body["errors"][0]) == "VALIDATION_FAILED"


async def test_review_follows_the_role_rules(server: GatewayServer) -> None:
    mac, web, alice = await overlap(server, "LAST_WRITER_WINS")
    await web.write(web.action("UPDATE", 3_000, end=10))
    await mac.write(mac.action("UPDATE", 2_000, end=20))
    (conflict,) = await conflicts(alice, status="OPEN")

    bob = server.client(server.token("bob", Role.PATIENT))
    assert await conflicts(bob) == []
    missing = await bob.error(RESOLVE, id=conflict["id"], resolution="KEEP_WINNER")
    assert error_code(missing) == "NOT_FOUND"
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    assert await conflicts(carol) == []
    await alice.data('mutation { grantAccess(project: "timer", grantee: "dr-carol") { user } }')
    assert [c["id"] for c in await conflicts(carol, user="alice")] == [conflict["id"]]

    await carol.data(RESOLVE, id=conflict["id"], resolution="KEEP_WINNER")
    assert await conflicts(alice, status="OPEN") == []
    (closed,) = await conflicts(alice, status="RESOLVED")
    assert (closed["resolution"], closed["resolvedBy"]) == ("KEEP_WINNER", "dr-carol")
    assert (await record(alice))["data"]["end"] == 10  # keeping the winner writes nothing


@pytest.mark.parametrize("policy", ["LAST_WRITER_WINS", "REJECT"])
async def test_the_policy_of_a_table_can_change(server: GatewayServer, policy: str) -> None:
    admin = await make_timer(server, policy)
    other = "REJECT" if policy == "LAST_WRITER_WINS" else "LAST_WRITER_WINS"
    changed = await admin.data(
        """mutation($policy: ConflictPolicy!) {
             setConflictPolicy(project: "timer", table: "sessions", policy: $policy) {
               name conflictPolicy } }""",
        policy=other,
    )
    assert changed["setConflictPolicy"] == {"name": "sessions", "conflictPolicy": other}
    alice = server.client(server.token("alice", Role.PATIENT))
    refused = await alice.error(
        'mutation { setConflictPolicy(project: "timer", table: "sessions", policy: REJECT) '
        "{ name } }"
    )
    assert error_code(refused) == "FORBIDDEN"
    unknown = await admin.error(
        'mutation { setConflictPolicy(project: "timer", table: "nope", policy: REJECT) { name } }'
    )
    assert error_code(unknown) == "NOT_FOUND"
