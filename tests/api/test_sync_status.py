"""syncStatus: RegardingWork's sync status report, over the real API on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Conflict, Device, ProjectTable
from gateway.db.types import utcnow
from gateway.settings import Settings
from gateway.sync.status import span
from tests.support import GatewayServer, GraphQLHttp, create_project, error_code, settings_for

REPORT = """query($user: String, $includeDevices: Boolean! = true,
                  $checkConflicts: Boolean! = false, $lastHours: Int! = 24) {
  syncStatus(project: "rw", user: $user, includeDevices: $includeDevices,
             checkConflicts: $checkConflicts, lastHours: $lastHours) {
    project user syncStatus lastSync syncLag { seconds text }
    totalDevices activeDevices pendingSyncs
    devices { deviceId deviceNames deviceType version status pendingUp pendingDown lastSync }
    dataSummary {
      totalActions unsyncedActions lastAction conflictsDetected
      tables { table actions lastChange }
    }
    recommendations
    conflicts { id type description affectedRecords resolution devices table detectedAt }
    conflictResolution { autoResolvable recommendedAction supportContact }
  }
}"""
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "rw", actions: $actions, deviceId: $deviceId) { accepted }
}"""
READ = """query($deviceId: String!) {
  actions(project: "rw", deviceId: $deviceId) { hasMore }
}"""
HEARTBEAT = """mutation($id: String!, $name: String, $type: String, $version: String, $up: Int) {
  reportDevice(project: "rw", deviceId: $id, name: $name, type: $type, version: $version,
               pendingUp: $up) { deviceId }
}"""


async def regardingwork(server: GatewayServer) -> GraphQLHttp:
    """The project, with a session table and a preferences table; jane's client."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "rw", "RegardingWork")
    for table, field, kind in (("sessions", "minutes", "INT"), ("preferences", "theme", "STRING")):
        await admin.data(
            f'mutation {{ defineTable(project: "rw", name: "{table}", '
            f'fields: [{{name: "{field}", type: {kind}, required: true}}]) {{ name }} }}'
        )
    return server.client(server.token("jane", Role.PATIENT))


def session(n: int) -> dict[str, Any]:
    return _action("sessions", n, minutes=25)


def _action(table: str, n: int, **data: Any) -> dict[str, Any]:
    return {
        "table": table, "user": "jane", "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_724_500_000_000 + n, "order": 0, "jsonData": json.dumps(data),
    }  # fmt: skip


async def report(client: GraphQLHttp, **variables: Any) -> dict[str, Any]:
    return (await client.data(REPORT, **variables))["syncStatus"]


async def in_database(settings: Settings, *statements: Any) -> None:
    """Change rows behind the server's back, where only the passing of days would do."""
    db = Database(settings.database_url)
    try:
        async with db.transaction() as s:
            for statement in statements:
                await s.execute(statement)
    finally:
        await db.dispose()


def seen_days_ago(device_id: str, days: int) -> Any:
    return (
        update(Device)
        .where(Device.device_id == device_id)  # type: ignore[arg-type]
        .values(last_seen=utcnow() - timedelta(days=days, minutes=1))
    )


async def test_a_regardingwork_like_user_with_three_devices(migrated_url: str) -> None:
    """Up to date, stale with pending changes, offline: the seed's example, rebuilt."""
    settings = settings_for(migrated_url, device_stale_seconds=1.0)
    with GatewayServer.running(settings) as server:
        jane = await regardingwork(server)
        for device_id, name, kind, version in (
            ("mac-app-v1.2.3", "Mac app", "mac_app", "1.2.3"),
            ("windows-app-v1.1.0", "Windows app", "windows_app", "1.1.0"),
            ("old-tablet", "Old tablet", "tablet", "0.9"),
        ):
            await jane.data(HEARTBEAT, id=device_id, name=name, type=kind, version=version)
        await jane.data(WRITE, actions=[session(1)], deviceId="windows-app-v1.1.0")
        await in_database(settings, seen_days_ago("old-tablet", 3))
        await asyncio.sleep(1.1)  # the Windows app's last sync is now older than the threshold
        await jane.data(
            WRITE,
            actions=[session(2), session(3), _action("preferences", 4, theme="dark")],
            deviceId="mac-app-v1.2.3",
        )
        await jane.data(READ, deviceId="mac-app-v1.2.3")  # the mac gets the windows session
        await jane.data(HEARTBEAT, id="windows-app-v1.1.0", up=2)  # 2 sessions wait on it

        got = await report(jane)
        devices = {d["deviceId"]: d for d in got.pop("devices")}
        assert {k: (d["status"], d["pendingUp"], d["pendingDown"]) for k, d in devices.items()} == {
            "mac-app-v1.2.3": ("UP_TO_DATE", None, 0),
            "old-tablet": ("OFFLINE", None, 4),
            "windows-app-v1.1.0": ("STALE", 2, 3),
        }
        assert devices["windows-app-v1.1.0"]["deviceType"] == "windows_app"
        assert got["lastSync"] == devices["mac-app-v1.2.3"]["lastSync"]  # the mac's read
        assert got["lastSync"] > devices["windows-app-v1.1.0"]["lastSync"]
        summary = got.pop("dataSummary")
        tables = summary.pop("tables")
        assert [(t["table"], t["actions"]) for t in tables] == [("preferences", 1), ("sessions", 3)]
        assert summary.pop("lastAction") == max(t["lastChange"] for t in tables)
        assert summary == {"totalActions": 4, "unsyncedActions": 2, "conflictsDetected": 0}
        assert 0 <= got["syncLag"]["seconds"] < 60
        assert got | {"lastSync": None, "syncLag": None} == {
            "project": "rw",
            "user": "jane",
            "syncStatus": "DELAYED",
            "lastSync": None,
            "syncLag": None,
            "totalDevices": 3,
            "activeDevices": 2,  # the old tablet was last seen three days ago
            "pendingSyncs": 9,  # 2 + 3 for the Windows app, 4 for the old tablet
            "recommendations": [
                "Old tablet has not been seen for 3 days - open the app to sync",
                "Windows app has 2 pending changes and 3 changes to receive, last synced less "
                "than a minute ago - sync recommended",
                "All other devices are up to date",
            ],
            "conflicts": None,
            "conflictResolution": None,
        }
        assert got["syncLag"]["text"] == "just now"

        brief = await report(jane, includeDevices=False, lastHours=96)
        assert brief["devices"] is None
        assert (brief["activeDevices"], brief["totalDevices"]) == (3, 3)


async def test_delayed_until_a_device_reads_then_healthy(server: GatewayServer) -> None:
    jane = await regardingwork(server)
    await jane.data(HEARTBEAT, id="laptop", name="Laptop")
    await jane.data(WRITE, actions=[session(1), session(2)], deviceId="phone")
    got = await report(jane, checkConflicts=True)
    assert (got["syncStatus"], got["pendingSyncs"]) == ("DELAYED", 2)
    assert got["recommendations"] == [
        "Laptop has 2 changes to receive, never synced - sync recommended",
        "All other devices are up to date",
    ]
    await jane.data(READ, deviceId="laptop")
    got = await report(jane, checkConflicts=True)
    assert (got["syncStatus"], got["pendingSyncs"]) == ("HEALTHY", 0)
    assert got["recommendations"] == ["All devices are up to date"]
    assert got["conflicts"] == []
    assert got["conflictResolution"] == {
        "autoResolvable": True,
        "recommendedAction": "No conflicts to review",
        "supportContact": None,  # GATEWAY_SUPPORT_CONTACT is not set
    }
    # a device whose heartbeat says changes wait on it delays the status too
    await jane.data(HEARTBEAT, id="phone", up=1)
    got = await report(jane)
    assert (got["syncStatus"], got["pendingSyncs"], got["dataSummary"]["unsyncedActions"]) == (
        "DELAYED",
        1,
        1,
    )
    assert got["recommendations"] == [
        "phone has 1 pending change - sync recommended",
        "All other devices are up to date",
    ]


async def test_offline_without_devices_or_without_recent_ones(server: GatewayServer) -> None:
    jane = await regardingwork(server)
    got = await report(jane)
    assert got | {"dataSummary": None} == {
        "project": "rw", "user": "jane", "syncStatus": "OFFLINE", "lastSync": None,
        "syncLag": None, "totalDevices": 0, "activeDevices": 0, "pendingSyncs": 0,
        "devices": [], "dataSummary": None, "conflicts": None, "conflictResolution": None,
        "recommendations": [
            "No device has synced yet - open the app on a device to start syncing"
        ],
    }  # fmt: skip
    assert got["dataSummary"] == {
        "totalActions": 0, "unsyncedActions": 0, "lastAction": None, "conflictsDetected": 0,
        "tables": [],
    }  # fmt: skip
    await jane.data(HEARTBEAT, id="tablet", name="Tablet")
    await in_database(server.settings, seen_days_ago("tablet", 2))
    got = await report(jane)
    assert (got["syncStatus"], got["activeDevices"], got["totalDevices"]) == ("OFFLINE", 0, 1)
    assert got["recommendations"] == ["Tablet has not been seen for 2 days - open the app to sync"]
    # over the last three days it was active, and nothing waits: the status is not held back
    wider = await report(jane, lastHours=72)
    assert (wider["syncStatus"], wider["activeDevices"]) == ("HEALTHY", 1)
    assert wider["devices"][0]["status"] == "OFFLINE"  # the device threshold is a day


async def test_open_conflicts_and_what_to_do_about_them(migrated_url: str) -> None:
    settings = settings_for(migrated_url, support_contact="api-support@example.org")
    with GatewayServer.running(settings) as server:
        jane = await regardingwork(server)
        await jane.data(HEARTBEAT, id="mac", name="Mac app")
        await jane.data(WRITE, actions=[session(1), session(2)], deviceId="mac")
        await jane.data(READ, deviceId="web")
        await add_conflicts(settings)

        got = await report(jane)
        assert got["syncStatus"] == "CONFLICTS"
        assert got["dataSummary"]["conflictsDetected"] == 2  # open ones of jane only
        assert got["recommendations"][0] == (
            "2 conflicts need review - list them with checkConflicts and settle each with "
            "resolveConflict"
        )
        assert (got["conflicts"], got["conflictResolution"]) == (None, None)

        checked = await report(jane, checkConflicts=True)
        conflicts = checked["conflicts"]
        assert [c["type"] for c in conflicts] == ["UPDATE_AFTER_DELETE", "CONCURRENT_UPDATE"]
        newest, oldest = conflicts
        assert newest | {"id": None, "detectedAt": None} == {
            "id": None, "detectedAt": None, "type": "UPDATE_AFTER_DELETE",
            "description": "web updated sessions record 'two', which Mac app deleted; the "
                           "later change, the deletion from Mac app, was kept",
            "affectedRecords": [f"{2:032x}"], "resolution": "MANUAL_REVIEW_REQUIRED",
            "devices": ["mac", "web"], "table": "sessions",
        }  # fmt: skip
        assert oldest["description"] == (
            "web and Mac app changed sessions record 'one' without seeing each other's change; "
            "the later change, from Mac app, was kept"
        )
        assert (oldest["resolution"], oldest["devices"]) == ("KEPT_LATEST", ["mac", "web"])
        assert newest["id"] > oldest["id"]
        assert checked["conflictResolution"] == {
            "autoResolvable": False,  # the deletion took web's edit with it
            "recommendedAction": "Review the conflicts marked MANUAL_REVIEW_REQUIRED, where a "
            "deletion won over an edit: restore the edit with resolveConflict (APPLY_LOSER) or "
            "confirm the deletion (KEEP_WINNER)",
            "supportContact": "api-support@example.org",
        }

        await in_database(
            settings,
            update(Conflict).where(Conflict.id == int(newest["id"])).values(status="RESOLVED"),  # type: ignore[arg-type]
        )
        checked = await report(jane, checkConflicts=True)
        assert [c["id"] for c in checked["conflicts"]] == [oldest["id"]]
        assert checked["conflictResolution"] == {
            "autoResolvable": True,
            "recommendedAction": "Check that the kept versions are right and confirm each with "
            "resolveConflict (KEEP_WINNER), or restore the other change (APPLY_LOSER)",
            "supportContact": "api-support@example.org",
        }
        assert checked["recommendations"][0].startswith("1 conflict needs review")


async def test_a_conflict_the_writer_records_shows_in_the_report(server: GatewayServer) -> None:
    jane = await regardingwork(server)
    await jane.data(WRITE, actions=[session(1)], deviceId="mac")
    await jane.data(READ, deviceId="web")
    edit = session(1) | {"action": "UPDATE"}
    await jane.data(WRITE, actions=[edit | {"time": edit["time"] + 10}], deviceId="mac")
    # web edits the version it had, unaware of the mac's edit, and later: it wins
    await jane.data(WRITE, actions=[edit | {"time": edit["time"] + 20}], deviceId="web")
    got = await report(jane, checkConflicts=True)
    assert (got["syncStatus"], got["dataSummary"]["conflictsDetected"]) == ("CONFLICTS", 1)
    [conflict] = got["conflicts"]
    assert (conflict["type"], conflict["devices"], conflict["resolution"]) == (
        "CONCURRENT_UPDATE",
        ["web", "mac"],
        "KEPT_LATEST",
    )
    assert conflict["affectedRecords"] == [f"{1:032x}"]
    assert got["conflictResolution"]["autoResolvable"] is True


async def add_conflicts(settings: Settings) -> None:
    """Conflicts as the writer records them: two open ones of jane's, one resolved, one of
    another user's."""
    db = Database(settings.database_url)
    try:
        async with db.transaction() as s:
            table = await s.scalar(select(ProjectTable).where(ProjectTable.name == "sessions"))
            assert table is not None and table.id is not None
            for fields in _conflicts(table.project_id, table.id):
                s.add(Conflict(**fields))
                await s.flush()  # ids in this order
    finally:
        await db.dispose()


def _conflicts(project_id: int, table_id: int) -> list[dict[str, Any]]:

    def side(device: str, action: str, time: int) -> dict[str, Any]:
        return {"deviceId": device, "action": action, "time": time, "order": 0,
                "position": None, "data": None}  # fmt: skip

    def row(n: int, key: str, kind: str, policy: str, **kw: Any) -> dict[str, Any]:
        return {
            "project_id": project_id, "table_id": table_id, "user_id": "jane",
            "record_id": f"{n:032x}", "record_key": key, "kind": kind, "policy": policy,
            "winner": side("mac", "UPDATE", 2), "loser": side("web", "UPDATE", 1),
        } | kw  # fmt: skip

    return [
        row(1, "one", "CONCURRENT_UPDATE", "LAST_WRITER_WINS"),
        row(2, "two", "UPDATE_AFTER_DELETE", "LAST_WRITER_WINS", winner=side("mac", "DELETE", 2)),
        row(1, "one", "CONCURRENT_UPDATE", "LAST_WRITER_WINS", status="RESOLVED"),
        row(3, "three", "CONCURRENT_UPDATE", "LAST_WRITER_WINS", user_id="john"),
    ]


async def test_whose_report_you_may_see(server: GatewayServer, admin_token: str) -> None:
    jane = await regardingwork(server)
    await jane.data(WRITE, actions=[session(1)], deviceId="phone")
    bob = server.client(server.token("bob", Role.PATIENT))
    assert error_code(await bob.error(REPORT, user="jane")) == "FORBIDDEN"
    own = await report(bob)  # omitted: the caller's own
    assert (own["user"], own["totalDevices"]) == ("bob", 0)
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    assert error_code(await carol.error(REPORT, user="jane")) == "FORBIDDEN"
    await jane.data('mutation { grantAccess(project: "rw", grantee: "dr-carol") { user } }')
    granted = await report(carol, user="jane")
    assert (granted["user"], granted["totalDevices"]) == ("jane", 1)
    admin = server.client(admin_token)
    assert (await report(admin, user="jane"))["dataSummary"]["totalActions"] == 1
    unknown = '{ syncStatus(project: "nope") { syncStatus } }'
    assert error_code(await jane.error(unknown)) == "NOT_FOUND"


async def test_last_hours_must_be_positive(server: GatewayServer) -> None:
    jane = await regardingwork(server)
    for hours in (0, -3):
        error = await jane.error(REPORT, lastHours=hours)
        assert (error_code(error), error["extensions"]["field"]) == ("BAD_USER_INPUT", "lastHours")


def test_durations_read_as_people_say_them() -> None:
    assert [span(s) for s in (0, 59, 60, 150, 3600, 7300, 86400, 3 * 86400 + 5)] == [
        "less than a minute", "less than a minute", "1 minute", "2 minutes", "1 hour",
        "2 hours", "1 day", "3 days",
    ]  # fmt: skip
