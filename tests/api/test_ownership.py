"""A user's devices, data and live feeds are theirs alone: each exploit of issue 10, tried as a
hostile patient would, over HTTP and WebSockets against the real gateway, on both databases.

The clinic is set up like the demo: a closed project whose members are the patients alice and
bob and the professional dr-carol, to whom alice granted access; notes refuse stale edits
(REJECT), so a stale edit shows whether what a device received was tampered with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, error_code, settings_for
from tests.support.live import PROTOCOLS, live_session, subscribed

PROJECT = "clinic"
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String, $user: String) {
  writeActions(project: "clinic", actions: $actions, deviceId: $deviceId, user: $user) {
    accepted } }"""
READ = """query($deviceId: String, $user: String) {
  actions(project: "clinic", deviceId: $deviceId, user: $user) { actions { recordId } } }"""
DEVICE = """query($deviceId: String!, $user: String) {
  device(project: "clinic", deviceId: $deviceId, user: $user) {
    deviceId owner deviceNames pendingUp pendingDown status } }"""
DEVICES = '{ devices(project: "clinic") { deviceId owner deviceNames } }'
SYNCS = '{ syncs(project: "clinic") { id deviceId owner } }'
RUNS = """query($syncId: Int!) { syncRuns(syncId: $syncId) {
  pagination { totalRecords } data { status errorCode errorDetail syncTriggerReason { uiDetail } }
} }"""
REPORT = """mutation($deviceId: String!, $name: String, $pendingUp: Int) {
  reportDevice(project: "clinic", deviceId: $deviceId, name: $name, pendingUp: $pendingUp) {
    deviceId owner deviceNames pendingUp pendingDown status lastSync } }"""
CREATE_SYNC = """mutation($deviceId: String) {
  createSync(project: "clinic", name: "x", deviceId: $deviceId) { id deviceId owner } }"""


def note(n: int, action: str, time: int, text: str | None = None) -> dict[str, Any]:
    return {
        "table": "notes", "user": "alice", "action": action, "recordId": f"{n:032x}",
        "time": time, "order": 0,
        "jsonData": None if text is None else json.dumps({"text": text}),
    }  # fmt: skip


class Clinic:
    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.admin = self.client("root", Role.ADMIN)
        self.alice = self.client("alice", Role.PATIENT)
        self.bob = self.client("bob", Role.PATIENT)
        self.carol = self.client("dr-carol", Role.PROFESSIONAL)

    def client(self, user: str, role: Role) -> GraphQLHttp:
        return self.server.client(self.server.token(user, role))

    async def write(self, device: str, *actions: dict[str, Any]) -> dict[str, Any]:
        return await self.alice.execute(WRITE, actions=list(actions), deviceId=device)

    async def alice_device(self, device_id: str) -> dict[str, Any]:
        return (await self.alice.data(DEVICE, deviceId=device_id))["device"]

    async def alice_sync_of(self, device_id: str) -> int:
        syncs = (await self.alice.data(SYNCS))["syncs"]
        [found] = [s for s in syncs if s["deviceId"] == device_id]
        assert found["owner"] == "alice"
        return int(found["id"])


async def make_clinic(server: GatewayServer) -> Clinic:
    clinic = Clinic(server)
    admin = clinic.admin
    await admin.data(f'mutation {{ createProject(code: "{PROJECT}", name: "Clinic") {{ code }} }}')
    await admin.data(
        'mutation { defineTable(project: "clinic", name: "notes", conflictPolicy: REJECT, '
        'fields: [{name: "text", type: STRING, required: true}]) { name } }'
    )
    for member in ("alice", "bob", "dr-carol"):
        await admin.data(
            f'mutation {{ addProjectMember(project: "clinic", user: "{member}") {{ code }} }}'
        )
    await clinic.alice.data(
        'mutation { grantAccess(project: "clinic", grantee: "dr-carol") { user } }'
    )
    return clinic


@pytest.fixture
async def clinic(server: GatewayServer) -> Clinic:
    return await make_clinic(server)


async def test_a_sync_created_first_by_another_user_never_receives_her_runs(
    clinic: Clinic,
) -> None:
    """Exploit 1: bob names alice's deviceId first; her refused stale edit (whose error carries
    her record) must not become a run of his sync, and her device must stay hers."""
    bobs = (await clinic.bob.data(CREATE_SYNC, deviceId="alice-tablet"))["createSync"]
    assert bobs["owner"] == "bob"
    assert not (await clinic.write("alice-tablet", note(1, "INSERT", 1000, "private"))).get(
        "errors"
    )
    await clinic.alice.data(READ, deviceId="alice-laptop")  # the laptop receives it, edits it
    edit = await clinic.write("alice-laptop", note(1, "UPDATE", 2000, "diagnosis: secret"))
    assert not edit.get("errors")
    stale = await clinic.write("alice-tablet", note(1, "UPDATE", 1500, "stale"))
    assert error_code(stale["errors"][0]) == "CONFLICT"

    runs = (await clinic.bob.data(RUNS, syncId=int(bobs["id"])))["syncRuns"]
    assert runs["pagination"]["totalRecords"] == 0
    assert "secret" not in json.dumps(await clinic.bob.execute(RUNS, syncId=int(bobs["id"])))

    hers = await clinic.alice_sync_of("alice-tablet")
    statuses = [
        r["status"] for r in (await clinic.alice.data(RUNS, syncId=hers))["syncRuns"]["data"]
    ]
    assert statuses == ["FAILED", "COMPLETED"]
    tablet = await clinic.alice_device("alice-tablet")
    assert tablet is not None and tablet["owner"] == "alice"
    owners = {d["owner"] for d in (await clinic.bob.data(DEVICES))["devices"]}
    assert owners <= {"bob"}


async def test_another_user_naming_her_device_ids_changes_nothing_of_hers(clinic: Clinic) -> None:
    """Exploit 2: reportDevice, recordSyncEvent, reads, writes and createSync with alice's
    deviceIds reach bob's own devices; her phone's names, health, delivered progress, runs and
    conflicts stay as they were, and nothing bob sees names her devices."""
    assert not (await clinic.write("alice-laptop", note(1, "INSERT", 1000, "hello"))).get("errors")
    await clinic.alice.data(REPORT, deviceId="alice-phone", name="Phone")
    await clinic.alice.data(REPORT, deviceId="alice-laptop", name="Laptop")
    phone_before = await clinic.alice_device("alice-phone")
    assert phone_before["pendingDown"] == 1  # the laptop's note has not reached the phone
    phone_runs = await clinic.alice.data(RUNS, syncId=await clinic.alice_sync_of("alice-laptop"))

    # bob's sync of "alice-phone" is his own, created just as for an id nobody used
    for device_id in ("alice-phone", "never-seen"):
        created = (await clinic.bob.data(CREATE_SYNC, deviceId=device_id))["createSync"]
        assert created["deviceId"] == device_id and created["owner"] == "bob"
    # bob's heartbeat with her phone's id is his own device, with its real health
    answer = await clinic.bob.data(REPORT, deviceId="alice-phone", name="PWNED", pendingUp=999)
    assert answer["reportDevice"] == {
        "deviceId": "alice-phone", "owner": "bob", "deviceNames": ["PWNED"], "pendingUp": 999,
        "pendingDown": 0, "status": "STALE", "lastSync": None,
    }  # fmt: skip
    await clinic.bob.data(
        'mutation { recordSyncEvent(project: "clinic", deviceId: "alice-laptop", direction: PUT,'
        ' deviceName: "PWNED2") { deviceName } }'
    )
    # bob reads and writes his own data as "alice-phone"
    await clinic.bob.data(READ, deviceId="alice-phone")
    bobs_note = note(9, "INSERT", 1000, "bob's") | {"user": "bob"}
    await clinic.bob.data(WRITE, actions=[bobs_note], deviceId="alice-phone")
    assert [s["owner"] for s in (await clinic.bob.data(SYNCS))["syncs"]] == ["bob", "bob"]

    assert await clinic.alice_device("alice-phone") == phone_before
    laptop = await clinic.alice_device("alice-laptop")
    assert laptop["deviceNames"] == ["Laptop"]
    status = await clinic.alice.data('{ syncStatus(project: "clinic") { recommendations } }')
    assert "PWNED" not in json.dumps(status)
    same_runs = await clinic.alice.data(RUNS, syncId=await clinic.alice_sync_of("alice-laptop"))
    assert same_runs == phone_runs
    # her phone never received the laptop's note: its stale edit is still a conflict
    stale = await clinic.write("alice-phone", note(1, "UPDATE", 1500, "stale"))
    assert error_code(stale["errors"][0]) == "CONFLICT"
    services = await clinic.bob.data('{ syncServices(project: "clinic") { user deviceNames } }')
    assert {s["user"] for s in services["syncServices"]} == {"bob"}
    assert "Phone" not in json.dumps(services) and "Laptop" not in json.dumps(services)


async def test_device_names_resolve_among_the_target_users_devices(clinic: Clinic) -> None:
    await clinic.alice.data(REPORT, deviceId="a1", name="Tablet")
    await clinic.alice.data(REPORT, deviceId="a2", name="Tablet")
    await clinic.bob.data(REPORT, deviceId="b1", name="Tablet")
    summary = '{ syncSummary(project: "clinic", deviceName: "Tablet") { casesPendingSync } }'
    ambiguous = await clinic.alice.error(summary)
    assert error_code(ambiguous) == "BAD_USER_INPUT"
    assert ambiguous["extensions"]["candidates"] == ["a1", "a2"]
    assert (await clinic.bob.data(summary))["syncSummary"] == {"casesPendingSync": 0}
    # an exact deviceId wins over names; another user's device is theirs to name
    by_id = '{ syncSummary(project: "clinic", deviceName: "a1") { casesPendingSync } }'
    assert (await clinic.alice.data(by_id))["syncSummary"] == {"casesPendingSync": 0}
    assert error_code(await clinic.bob.error(by_id)) == "NOT_FOUND"
    for_alice = (
        '{ syncSummary(project: "clinic", deviceName: "a1", user: "alice") { lastPut { time } } }'
    )
    assert error_code(await clinic.bob.error(for_alice)) == "FORBIDDEN"
    assert (await clinic.carol.data(for_alice))["syncSummary"] == {"lastPut": None}


async def test_non_members_reach_nothing_in_a_closed_project(clinic: Clinic) -> None:
    """Exploit 4: any valid token could write into any project and list them all."""
    carl = clinic.client("carl", Role.PATIENT)
    carls = note(5, "INSERT", 1000, "mine") | {"user": "carl"}
    refused = await carl.error(WRITE, actions=[carls])
    assert error_code(refused) == "FORBIDDEN"
    assert (await carl.data("{ projects { code } }"))["projects"] == []
    assert error_code(await carl.error('{ project(code: "clinic") { code } }')) == "FORBIDDEN"
    assert (await carl.data('{ project(code: "nowhere") { code } }'))["project"] is None
    assert (
        error_code(await carl.error('{ devices(project: "clinic") { deviceId } }')) == "FORBIDDEN"
    )
    await clinic.admin.data(
        'mutation { addProjectMember(project: "clinic", user: "carl") { code } }'
    )
    assert (await carl.data(WRITE, actions=[carls]))["writeActions"]["accepted"] == [0]
    projects = (await carl.data("{ projects { code open members } }"))["projects"]
    assert projects == [{"code": "clinic", "open": False, "members": ["carl"]}]
    members = (await clinic.admin.data('{ project(code: "clinic") { members } }'))["project"]
    assert members["members"] == ["alice", "bob", "carl", "dr-carol"]
    assert (await clinic.carol.data('{ project(code: "clinic") { members } }'))["project"] == {
        "members": ["alice", "dr-carol"]
    }
    removed = 'mutation { removeProjectMember(project: "clinic", user: "carl") }'
    assert (await clinic.admin.data(removed))["removeProjectMember"] is True
    assert (await clinic.admin.data(removed))["removeProjectMember"] is False
    assert error_code(await carl.error(READ)) == "FORBIDDEN"
    assert error_code(await clinic.alice.error(removed)) == "FORBIDDEN"


async def test_an_open_project_admits_every_signed_in_user(clinic: Clinic) -> None:
    await clinic.admin.data(
        'mutation { createProject(code: "open", name: "Open", open: true) { open } }'
    )
    carl = clinic.client("carl", Role.PATIENT)
    assert (await carl.data("{ projects { code open } }"))["projects"] == [
        {"code": "open", "open": True}
    ]


async def ends_with(stream: AsyncIterator[dict[str, Any]], seconds: float = 15) -> str:
    """Read a subscription until it ends with an error; its code."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                await anext(stream)
            except TransportQueryError as ended:
                assert ended.errors
                return str(ended.errors[0]["extensions"]["code"])
            except TransportConnectionFailed as failed:
                # After an expired token's error the gateway closes the socket with 4403
                # "token expired" (graphql-transport-ws): gql, tidying up after that error,
                # may find the socket closed when it sends its "complete", and raise that
                # instead. The close says the same as the error it replaced.
                if _closed_for_expiry(failed):
                    return "UNAUTHENTICATED"
                raise


def _closed_for_expiry(failure: BaseException) -> bool:
    cause: BaseException | None = failure
    while cause is not None:
        if isinstance(cause, ConnectionClosed) and cause.rcvd is not None:
            return cause.rcvd.code == 4403 and cause.rcvd.reason.startswith("token expired")
        cause = cause.__cause__ or cause.__context__
    return False


FEEDS = {
    "databaseActions": 'subscription { databaseActions(project: "clinic", user: "alice") '
    "{ actions { recordId } } }",
    "deviceStatusChanged": 'subscription { deviceStatusChanged(project: "clinic") '
    "{ deviceId owner } }",
    "syncStatusChanged": 'subscription { syncStatusChanged(project: "clinic", user: "alice") '
    "{ user } }",
    "syncRunUpdated": 'subscription { syncRunUpdated(project: "clinic") { id } }',
}


async def carols_feeds(
    session: AsyncClientSession, opened: list[Any]
) -> dict[str, AsyncIterator[dict[str, Any]]]:
    """dr-carol's four feeds of alice's data, each past its first message."""
    streams = {}
    for name, query in FEEDS.items():
        context = subscribed(session, query)
        streams[name] = await context.__aenter__()
        opened.append(context)
        async with asyncio.timeout(15):
            first = await anext(streams[name])
        assert first[name], name
    return streams


async def alice_is_busy(clinic: Clinic) -> None:
    """Something in each of dr-carol's feeds: an action, a device, a working run."""
    assert not (await clinic.write("alice-phone", note(1, "INSERT", 1000, "hi"))).get("errors")
    sync = await clinic.alice.data('mutation { createSync(project: "clinic", name: "job") { id } }')
    await clinic.alice.data(
        f"mutation {{ startSyncRun(syncId: {sync['createSync']['id']}) {{ status }} }}"
    )


REVOKE = 'mutation { revokeAccess(project: "clinic", grantee: "dr-carol") }'


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_revoking_a_grant_ends_every_live_feed_of_that_data(
    clinic: Clinic, protocol: str
) -> None:
    """Exploit 3: access was decided once, at subscribe time."""
    await alice_is_busy(clinic)
    token = clinic.server.token("dr-carol", Role.PROFESSIONAL)
    opened: list[Any] = []
    async with live_session(clinic.server, token, protocol) as session:
        try:
            streams = await carols_feeds(session, opened)
            assert (await clinic.alice.data(REVOKE))["revokeAccess"] is True
            codes = await asyncio.gather(*(ends_with(s, 10) for s in streams.values()))
            assert codes == ["FORBIDDEN"] * 4
        finally:
            for context in opened:
                await context.__aexit__(None, None, None)


async def test_a_revocation_on_another_replica_ends_feeds_within_the_poll_interval(
    clinic: Clinic, migrated_url: str
) -> None:
    """Another gateway on the same database: it hears of the change by NOTIFY (PostgreSQL) or,
    at the latest, when it re-checks every GATEWAY_LIVE_POLL_SECONDS (SQLite: no bus)."""
    await alice_is_busy(clinic)
    with GatewayServer.running(settings_for(migrated_url, live_poll_seconds=1.0)) as other:
        token = other.token("dr-carol", Role.PROFESSIONAL)
        opened: list[Any] = []
        async with live_session(other, token, PROTOCOLS[0]) as session:
            try:
                streams = await carols_feeds(session, opened)
                await clinic.alice.data(REVOKE)
                codes = await asyncio.gather(*(ends_with(s, 5) for s in streams.values()))
                assert codes == ["FORBIDDEN"] * 4
            finally:
                for context in opened:
                    await context.__aexit__(None, None, None)


async def test_removing_a_member_ends_their_live_feeds_of_the_project(clinic: Clinic) -> None:
    token = clinic.server.token("bob", Role.PATIENT)
    async with live_session(clinic.server, token, PROTOCOLS[0]) as session:
        query = "subscription { heartbeat(intervalMs: 60000) { seq } }"
        async with (
            subscribed(session, FEEDS["deviceStatusChanged"]) as devices,
            subscribed(session, query) as beats,
        ):
            await clinic.bob.data(REPORT, deviceId="bob-phone")
            async with asyncio.timeout(15):
                assert (await anext(devices))["deviceStatusChanged"]["owner"] == "bob"
                assert (await anext(beats))["heartbeat"]["seq"] == 1
            await clinic.admin.data(
                'mutation { removeProjectMember(project: "clinic", user: "bob") }'
            )
            assert await ends_with(devices, 10) == "FORBIDDEN"


async def test_heartbeat_ends_when_the_token_expires_and_counts_as_a_subscription(
    migrated_url: str,
) -> None:
    settings = settings_for(migrated_url, max_subscriptions_per_connection=1)
    with GatewayServer.running(settings) as server:
        # Long enough to see a first beat on a loaded machine (2 s expired before it, once).
        token = server.token("alice", Role.PATIENT, ttl=timedelta(seconds=5))
        query = "subscription { heartbeat(intervalMs: 200) { seq } }"
        async with (
            live_session(server, token, PROTOCOLS[0]) as session,
            subscribed(session, query) as first,
            subscribed(session, query) as second,
        ):
            async with asyncio.timeout(10):
                assert (await anext(first))["heartbeat"]["seq"] == 1
            assert await ends_with(second, 10) == "LIMIT_EXCEEDED"
            assert await ends_with(first, 15) == "UNAUTHENTICATED"
