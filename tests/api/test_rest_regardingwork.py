"""RegardingWork's ``GET /api/sync/status`` examples, replayed against the real server on both
databases and compared field by field with the seed's answers (``regardingwork-sync-status
.txt``); and how the adapter finds the project, which RegardingWork's request does not name.

The fixture is the seed's user: a Mac app and a web timer that synced, and a Windows app that
reports 2 sessions waiting and never synced. Values that depend on when the test runs (times,
the lag, activity within last_hours) or that the seed contradicts (it calls "healthy" a user
whose Windows app is "stale" with 2 sessions pending, and counts 0 pending syncs) are compared
by type and format only. The conflict example is two devices' overlapping sessions; its
``uuid-1``/``uuid-2`` are the fixture's session ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, create_project, settings_for
from tests.support.contract import assert_matches

SUPPORT = "api-support@regardingwork.com"
HEALTHY = {
    "sync_status": "healthy",
    "last_sync": "2025-08-24T15:30:45Z",
    "sync_lag": "2 minutes",
    "total_devices": 3,
    "active_devices": 2,
    "pending_syncs": 0,
    "devices": [
        {"device_id": "mac-app-v1.2.3", "device_type": "mac_app",
         "last_seen": "2025-08-24T15:30:45Z", "sync_status": "up_to_date", "version": "1.2.3",
         "sessions_pending": 0},
        {"device_id": "web-chrome-desktop", "device_type": "web_timer",
         "last_seen": "2025-08-24T15:25:30Z", "sync_status": "up_to_date",
         "version": "web-2.1.0", "sessions_pending": 0},
        {"device_id": "windows-app-v1.1.0", "device_type": "windows_app",
         "last_seen": "2025-08-24T14:15:22Z", "sync_status": "stale", "version": "1.1.0",
         "sessions_pending": 2},
    ],
    "data_summary": {
        "total_sessions": 89, "unsynced_sessions": 2, "last_session": "2025-08-24T15:30:00Z",
        "preferences_updated": "2025-08-23T10:15:30Z", "conflicts_detected": 0,
    },
    "recommendations": [
        "Windows app has 2 pending sessions - sync recommended",
        "All preferences are up to date across devices",
    ],
}  # fmt: skip
HEALTHY_LOOSE = {
    "sync_status", "last_sync", "sync_lag", "active_devices", "pending_syncs",
    "devices[].last_seen", "data_summary.total_sessions", "data_summary.last_session",
    "data_summary.preferences_updated", "recommendations[]",
}  # fmt: skip
DEVICES = (
    ("mac-app-v1.2.3", "Mac", "mac_app", "1.2.3", 0),
    ("web-chrome-desktop", "Chrome", "web_timer", "web-2.1.0", 0),
    ("windows-app-v1.1.0", "Windows app", "windows_app", "1.1.0", 2),
)
REPORT = """mutation($id: String!, $name: String!, $type: String!, $version: String!,
                     $pending: Int!) {
  reportDevice(project: "timer", deviceId: $id, name: $name, type: $type, version: $version,
               pendingUp: $pending) { deviceId }
}"""
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "timer", actions: $actions, deviceId: $deviceId) { accepted }
}"""
READ = """query($deviceId: String!) {
  actions(project: "timer", deviceId: $deviceId, maxCount: 0) { hasMore }
}"""
TABLES = (
    'mutation { defineTable(project: "timer", name: "sessions", '
    'fields: [{name: "started", type: INT}, {name: "ended", type: INT}], '
    'overlap: {start: "started", end: "ended"}) { overlap { start end } } }',
    'mutation { defineTable(project: "timer", name: "preferences", '
    'fields: [{name: "theme", type: STRING}]) { name } }',
)


def session(n: int, start: int, end: int) -> dict[str, Any]:
    return {
        "table": "sessions", "user": "jane", "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_756_000_000_000 + n, "order": 0,
        "jsonData": json.dumps({"started": start, "ended": end}),
    }  # fmt: skip


async def timer(server: GatewayServer) -> None:
    """jane's devices: the Mac app wrote sessions and preferences, both apps read them, the
    Windows app reports 2 sessions waiting."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "timer", "Pomodoro timer")
    for mutation in TABLES:
        await admin.data(mutation)
    jane = server.client(server.token("jane", Role.PATIENT))
    for device_id, name, kind, version, pending in DEVICES:
        await jane.data(
            REPORT, id=device_id, name=name, type=kind, version=version, pending=pending
        )
    preferences = {
        "table": "preferences", "user": "jane", "action": "INSERT", "recordId": "f" * 32,
        "time": 1_756_000_000_000, "order": 0, "jsonData": json.dumps({"theme": "dark"}),
    }  # fmt: skip
    sessions = [session(1, 1000, 2000), session(2, 3000, 4000)]
    await jane.data(WRITE, actions=[*sessions, preferences], deviceId="mac-app-v1.2.3")
    for device_id in ("mac-app-v1.2.3", "web-chrome-desktop"):
        await jane.data(READ, deviceId=device_id)


def client(server: GatewayServer, user: str = "jane", **headers: str) -> httpx.AsyncClient:
    token = server.token(user, Role.PATIENT)
    return httpx.AsyncClient(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}", **headers}
    )


async def status(http: httpx.AsyncClient, code: int = 200, **params: str) -> dict[str, Any]:
    response = await http.get("/api/sync/status", params=params)
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return settings_for(migrated_url, support_contact=SUPPORT)


async def test_the_status_example(server: GatewayServer) -> None:
    await timer(server)
    async with client(server) as http:
        answer = await status(http)
        assert_matches(answer, HEALTHY, loose=HEALTHY_LOOSE)
        assert answer["sync_status"] == "delayed"  # the Windows app is stale: not "healthy"
        assert answer["sync_lag"] == "just now"
        without = await status(http, include_devices="false", last_hours="1")
        assert "devices" not in without and without["total_devices"] == 3
        assert "conflicts" not in without


async def test_the_conflict_example_two_devices_overlapping_sessions(
    server: GatewayServer,
) -> None:
    await timer(server)
    jane = server.client(server.token("jane", Role.PATIENT))
    # The web timer records a session that overlaps the Mac app's first one (1000-2000);
    # one that only touches the second one's end (4000) does not overlap.
    overlapping, touching = session(3, 1500, 2500), session(4, 4000, 5000)
    await jane.data(WRITE, actions=[overlapping, touching], deviceId="web-chrome-desktop")
    async with client(server) as http:
        answer = await status(http, check_conflicts="true")
    expected = {
        "sync_status": "conflicts",
        "conflicts": [
            {
                "type": "session_overlap",
                "description": "Overlapping sessions detected from different devices",
                "affected_sessions": [f"{1:032x}", f"{3:032x}"],
                "resolution": "manual_review_required",
                "devices": ["mac_app", "web_timer"],
            }
        ],
        "conflict_resolution": {
            "auto_resolvable": False,
            "recommended_action": "Review overlapping sessions and delete duplicates",
            "support_contact": SUPPORT,
        },
    }
    assert_matches(answer, expected, loose={"conflicts[].description"}, extra_keys=True)
    assert answer["conflicts"][0]["description"].startswith(expected["conflicts"][0]["description"])
    assert answer["data_summary"]["conflicts_detected"] == 1
    # Written again, the same pair is not a second conflict.
    await jane.data(
        WRITE,
        actions=[{**overlapping, "action": "UPDATE", "time": overlapping["time"] + 1}],
        deviceId="web-chrome-desktop",
    )
    async with client(server) as http:
        assert len((await status(http, check_conflicts="true"))["conflicts"]) == 1


async def test_the_project_comes_from_the_header_the_setting_or_the_only_membership(
    server: GatewayServer,
) -> None:
    await timer(server)
    admin = server.client(server.token("root", Role.ADMIN))
    async with client(server) as http:
        assert (await status(http))["total_devices"] == 3  # jane's only project
    await create_project(admin, "other", "Other", members=("jane",))
    async with client(server) as http:
        refused = await status(http, 400)
        assert (refused["code"], refused["field"]) == ("BAD_USER_INPUT", "project")
    async with client(server, **{"X-Project": "timer"}) as http:
        assert (await status(http))["total_devices"] == 3
    async with client(server, **{"X-Project": "other"}) as http:
        assert (await status(http))["total_devices"] == 0
    async with client(server, **{"X-Project": "nope"}) as http:
        assert (await status(http, 404))["code"] == "NOT_FOUND"
    async with client(server) as http:
        for params in ({"last_hours": "0"}, {"last_hours": "x"}, {"check_conflicts": "maybe"}):
            assert (await status(http, 400, **params))["code"] == "BAD_USER_INPUT"


async def test_the_project_setting(migrated_url: str) -> None:
    with GatewayServer.running(settings_for(migrated_url, rest_default_project="timer")) as server:
        await timer(server)
        admin = server.client(server.token("root", Role.ADMIN))
        await create_project(admin, "other", "Other", members=("jane",))
        async with client(server) as http:
            assert (await status(http))["total_devices"] == 3
