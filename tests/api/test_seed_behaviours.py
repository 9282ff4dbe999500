"""The behaviours issue 16 added to the domain, through GraphQL on both databases:
recordSyncEvent's time and username, syncStatus without a project, and overlap detection as
defineTable declares it (listed by conflicts, settled by a person)."""

from __future__ import annotations

import json
from typing import Any

from gateway.auth.principal import Role
from tests.support import GatewayServer, create_project, error_code

RECORD = """mutation($time: DateTime, $username: String) {
  recordSyncEvent(project: "p", deviceId: "Dropbox", direction: GET, time: $time,
                  username: $username) { time username user }
}"""
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "p", actions: $actions, deviceId: $deviceId) { accepted }
}"""
CONFLICTS = """{ conflicts(project: "p") { edges { node {
  id type recordId winner { recordId deviceId } loser { recordId deviceId } devices } } } }"""


def shift(n: int, start: str, end: str) -> dict[str, Any]:
    return {
        "table": "shifts", "user": "alice", "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_700_000_000_000 + n, "order": 0,
        "jsonData": json.dumps({"start": start, "end": end}),
    }  # fmt: skip


async def test_record_sync_event_takes_the_services_time_and_username(
    server: GatewayServer,
) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "p", "P")
    alice = server.client(server.token("alice", Role.PATIENT))
    event = (
        await alice.data(RECORD, time="2026-06-03T20:34:25+02:00", username="alice@example.org")
    )["recordSyncEvent"]
    assert event == {
        "time": "2026-06-03T18:34:25+00:00", "username": "alice@example.org", "user": "alice",
    }  # fmt: skip
    assert (await alice.data(RECORD))["recordSyncEvent"]["username"] == "alice"
    for variables in (
        {"time": "2026-06-03T18:34:25"},  # no zone
        {"time": "2999-01-01T00:00:00Z"},  # not yet happened
        {"username": ""},
        {"username": "x" * 256},
    ):
        assert error_code(await alice.error(RECORD, **variables)) == "BAD_USER_INPUT"
    history = await alice.data('{ syncHistory(project: "p") { edges { node { id } } } }')
    assert len(history["syncHistory"]["edges"]) == 2  # the refused ones recorded nothing


async def test_sync_status_without_a_project_is_of_the_callers_only_one(
    server: GatewayServer,
) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    query = "{ syncStatus { project user } }"
    alice = server.client(server.token("alice", Role.PATIENT))
    assert error_code(await alice.error(query)) == "BAD_USER_INPUT"  # a member of none
    await create_project(admin, "p", "P")
    assert (await alice.data(query))["syncStatus"] == {"project": "p", "user": "alice"}
    await create_project(admin, "q", "Q")
    failed = await alice.error(query)
    assert error_code(failed) == "BAD_USER_INPUT" and "several" in failed["message"]


async def test_overlapping_ranges_of_two_devices_are_a_conflict_a_person_settles(
    server: GatewayServer,
) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "p", "P")
    define = (
        'mutation($overlap: OverlapInput) { defineTable(project: "p", name: "shifts", '
        'fields: [{name: "start", type: DATETIME}, {name: "end", type: DATETIME}, '
        '{name: "note", type: STRING}], overlap: $overlap) { overlap { start end } } }'
    )
    for wrong in ({"start": "start", "end": "start"}, {"start": "start", "end": "nope"},
                  {"start": "start", "end": "note"}):  # fmt: skip
        assert error_code(await admin.error(define, overlap=wrong)) == "BAD_USER_INPUT"
    table = await admin.data(define, overlap={"start": "start", "end": "end"})
    assert table["defineTable"]["overlap"] == {"start": "start", "end": "end"}
    alice = server.client(server.token("alice", Role.PATIENT))
    morning = shift(1, "2026-06-01T08:00:00Z", "2026-06-01T12:00:00Z")
    await alice.data(WRITE, actions=[morning], deviceId="phone")
    # The same device overlapping itself, or another device only touching the end: no conflict.
    await alice.data(
        WRITE, actions=[shift(2, "2026-06-01T11:00:00Z", "2026-06-01T13:00:00Z")], deviceId="phone"
    )
    await alice.data(
        WRITE, actions=[shift(3, "2026-06-01T13:00:00Z", "2026-06-01T14:00:00Z")], deviceId="web"
    )
    assert (await alice.data(CONFLICTS))["conflicts"]["edges"] == []
    await alice.data(
        WRITE, actions=[shift(4, "2026-06-01T09:00:00Z", "2026-06-01T10:00:00Z")], deviceId="web"
    )
    found = [e["node"] for e in (await alice.data(CONFLICTS))["conflicts"]["edges"]]
    assert [(c["type"], c["recordId"], c["winner"], c["loser"], c["devices"]) for c in found] == [
        (
            "SESSION_OVERLAP",
            f"{4:032x}",
            {"recordId": f"{1:032x}", "deviceId": "phone"},
            {"recordId": f"{4:032x}", "deviceId": "web"},
            ["phone", "web"],
        )
    ]
    resolve = (
        "mutation($id: Int!, $r: ConflictResolution!) { resolveConflict(id: $id, resolution: $r) "
        "{ status } }"
    )
    refused = await alice.error(resolve, id=found[0]["id"], r="APPLY_LOSER")
    assert error_code(refused) == "BAD_USER_INPUT"
    done = await alice.data(resolve, id=found[0]["id"], r="KEEP_WINNER")
    assert done["resolveConflict"]["status"] == "RESOLVED"
