"""Who may call what: every root field of the built schema against every kind of caller.

The table below is the authorization contract (``gateway/auth/access.py`` decides it). A root
Query, Mutation or Subscription field without a row fails this test, so a new field cannot ship
without saying who may call it. Each cell is run for real, over HTTP or a WebSocket, against a
gateway on each database, in a closed project ("clinic") whose members are alice and bob
(patients) and dr-carol and dr-dan (professionals); alice granted dr-carol access; carl is
signed in but no member.

Data addressed by project and user targets alice (carl: his own data). Objects addressed by id
(a sync, a run, a conflict) are alice's: whoever may not see them gets NOT_FOUND, as if they did
not exist. ``node``/``nodes`` answer such an id with null instead (Relay's contract).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from gateway.graphql.schema import schema
from tests.support import GatewayServer, GraphQLHttp

OK, U, F, N = "ok", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"
NULL = "null"  # no error, and the field answered null


@dataclass(frozen=True)
class Caller:
    kind: str
    user: str | None  # None: no token
    role: Role
    target: str  # whose data the caller names


CALLERS = (
    Caller("anonymous", None, Role.PATIENT, "alice"),
    Caller("non-member", "carl", Role.PATIENT, "carl"),
    Caller("patient, own data", "alice", Role.PATIENT, "alice"),
    Caller("patient, another's data", "bob", Role.PATIENT, "alice"),
    Caller("professional with a grant", "dr-carol", Role.PROFESSIONAL, "alice"),
    Caller("professional without a grant", "dr-dan", Role.PROFESSIONAL, "alice"),
    Caller("admin", "root", Role.ADMIN, "alice"),
)

# Outcomes in the order of CALLERS.
ANYONE = (U, OK, OK, OK, OK, OK, OK)  # every signed-in caller
PROJECT = (U, F, OK, OK, OK, OK, OK)  # the project's members and admins
DATA = (U, F, OK, F, OK, F, OK)  # a user's data: the user, a granted professional, admins
OWN = (U, F, OK, F, F, F, OK)  # managed for a user by that user and admins only
ADMINS = (U, F, F, F, F, F, OK)
BY_ID = (U, N, OK, N, OK, N, OK)  # alice's object by id: whoever may see her data
MANAGE_BY_ID = (U, N, OK, N, F, N, OK)  # ... and only she or an admin may change it
REVOKE = (U, OK, OK, F, F, F, OK)  # one's own grants can always be withdrawn
# Alice's object by global id, seen as BY_ID: null (nodes: [null]) for whoever may not see it.
NODE_BY_ID = (U, NULL, OK, NULL, OK, NULL, OK)


@dataclass
class World:
    """What the cells need: the server, and alice's objects addressed by id."""

    server: GatewayServer
    admin: GraphQLHttp
    alice_sync: int = 0
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next(self) -> int:
        return next(self.seq)


Variables = Callable[[World, Caller], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Row:
    document: str
    expected: tuple[str, ...]
    variables: Variables | None = None


def target(_: World, caller: Caller) -> Awaitable[dict[str, Any]]:
    return _done({"user": caller.target})


async def _done(value: dict[str, Any]) -> dict[str, Any]:
    return value


async def fresh(world: World, caller: Caller) -> dict[str, Any]:
    n = world.next()
    return {"user": caller.target, "n": n, "code": f"p{n}", "name": f"t{n}", "rid": f"{n:032x}"}


async def written(world: World, caller: Caller) -> dict[str, Any]:
    n = world.next()
    action = {
        "table": "notes", "user": caller.target, "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_700_000_000_000 + n, "order": 0, "jsonData": json.dumps({"text": "x"}),
    }  # fmt: skip
    return {"user": caller.target, "actions": [action]}


async def pushed(world: World, caller: Caller) -> dict[str, Any]:
    """A new document, as RxDB pushes one."""
    row = {"assumedMasterState": None, "newDocumentState": {"id": f"{world.next():032x}",
           "text": "x", "_deleted": False}}  # fmt: skip
    return {"user": caller.target, "rows": [row]}


async def alices_sync(world: World, _: Caller) -> dict[str, Any]:
    return {"id": world.alice_sync}


async def alices_device(world: World, _: Caller) -> dict[str, Any]:
    found = await world.admin.data(
        '{ device(project: "clinic", deviceId: "tab", user: "alice") { id } }'
    )
    return {"id": found["device"]["id"]}


async def working_run(world: World, _: Caller) -> dict[str, Any]:
    """A WORKING run of a new sync of alice's, so every caller finds one to change."""
    sync = await world.admin.data(
        'mutation($n: String!) { createSync(project: "clinic", name: $n, user: "alice") { id } }',
        n=f"job{world.next()}",
    )
    run = await world.admin.data(
        "mutation($s: Int!) { startSyncRun(syncId: $s) { id } }", s=sync["createSync"]["id"]
    )
    return {"id": run["startSyncRun"]["id"]}


async def open_conflict(world: World, _: Caller) -> dict[str, Any]:
    """A new conflict of alice's: her tablet edits a note her phone wrote, unseen."""
    n = world.next()

    def note(kind: str, time: int) -> dict[str, Any]:
        return {
            "table": "notes", "user": "alice", "action": kind, "recordId": f"c{n:031x}",
            "time": time, "order": 0, "jsonData": json.dumps({"text": kind}),
        }  # fmt: skip

    for device, action in (("phone", note("INSERT", 1)), ("tablet", note("UPDATE", 2))):
        await world.admin.data(WRITE, actions=[action], deviceId=device, user="alice")
    found = await world.admin.data(
        '{ conflicts(project: "clinic", user: "alice", status: OPEN, first: 100) '
        "{ edges { node { id recordId } } } }"
    )
    [mine] = [
        e["node"] for e in found["conflicts"]["edges"] if e["node"]["recordId"] == f"c{n:031x}"
    ]
    return {"id": mine["id"]}


WRITE = """mutation($actions: [ActionInput!]!, $user: String, $deviceId: String) {
  writeActions(project: "clinic", actions: $actions, user: $user, deviceId: $deviceId) {
    accepted } }"""

QUERIES: dict[str, Row] = {
    "me": Row("{ me { id } }", ANYONE),
    "projects": Row("{ projects { code } }", ANYONE),
    "project": Row('{ project(code: "clinic") { code } }', PROJECT),
    "actions": Row(
        'query($user: String) { actions(project: "clinic", user: $user) { hasMore } }',
        DATA,
        target,
    ),
    "readStats": Row(
        'query($user: String) { readStats(project: "clinic", user: $user) { count } }',
        DATA,
        target,
    ),
    "writeProgress": Row(
        'query($user: String) { writeProgress(project: "clinic", user: $user) { table } }',
        DATA,
        target,
    ),
    "records": Row(
        'query($user: String) { records(project: "clinic", table: "notes", user: $user) '
        "{ edges { cursor } } }",
        DATA,
        target,
    ),
    "pullRecords": Row(
        'query($user: String) { pullRecords(project: "clinic", table: "notes", limit: 10, '
        "user: $user) { checkpoint { cursor } } }",
        DATA,
        target,
    ),
    "devices": Row('{ devices(project: "clinic") { deviceId } }', PROJECT),
    "device": Row(
        'query($user: String) { device(project: "clinic", deviceId: "tab", user: $user) '
        "{ deviceId } }",
        DATA,
        target,
    ),
    "casesPendingSync": Row(
        'query($user: String) { casesPendingSync(project: "clinic", deviceName: "tab", '
        "user: $user) { edges { cursor } } }",
        DATA,
        target,
    ),
    "caseStatus": Row(
        'query($user: String) { caseStatus(project: "clinic", key: "k1", deviceName: "tab", '
        "user: $user) { key } }",
        DATA,
        target,
    ),
    "syncSummary": Row(
        'query($user: String) { syncSummary(project: "clinic", deviceName: "tab", user: $user) '
        "{ casesPendingSync } }",
        DATA,
        target,
    ),
    "syncHistory": Row(
        'query($user: String) { syncHistory(project: "clinic", user: $user) { edges { cursor } } }',
        DATA,
        target,
    ),
    "syncServices": Row('{ syncServices(project: "clinic") { deviceId } }', PROJECT),
    "conflicts": Row(
        'query($user: String) { conflicts(project: "clinic", user: $user) { edges { cursor } } }',
        PROJECT,
        target,
    ),
    "syncStatus": Row(
        'query($user: String) { syncStatus(project: "clinic", user: $user) { syncStatus } }',
        DATA,
        target,
    ),
    "syncs": Row('{ syncs(project: "clinic") { id } }', PROJECT),
    "sync": Row("query($id: Int!) { sync(id: $id) { id } }", BY_ID, alices_sync),
    "syncRun": Row("query($id: Int!) { syncRun(id: $id) { id } }", BY_ID, working_run),
    "syncRuns": Row(
        "query($id: Int!) { syncRuns(syncId: $id) { pagination { totalRecords } } }",
        BY_ID,
        alices_sync,
    ),
    "projectSyncRuns": Row(
        '{ projectSyncRuns(project: "clinic") { pagination { totalRecords } } }', PROJECT
    ),
    "node": Row("query($id: ID!) { node(id: $id) { id } }", NODE_BY_ID, alices_device),
    "nodes": Row("query($id: ID!) { nodes(ids: [$id]) { id } }", NODE_BY_ID, alices_device),
}

MUTATIONS: dict[str, Row] = {
    "grantAccess": Row(
        'mutation($user: String) { grantAccess(project: "clinic", grantee: "dr-zed", '
        "user: $user) { grantee } }",
        OWN,
        target,
    ),
    "revokeAccess": Row(
        'mutation($user: String) { revokeAccess(project: "clinic", grantee: "dr-zed", '
        "user: $user) }",
        REVOKE,
        target,
    ),
    "createProject": Row(
        'mutation($code: String!) { createProject(code: $code, name: "P") { code } }',
        ADMINS,
        fresh,
    ),
    "defineTable": Row(
        'mutation($name: String!) { defineTable(project: "clinic", name: $name, '
        'fields: [{name: "v", type: INT}]) { name } }',
        ADMINS,
        fresh,
    ),
    "setConflictPolicy": Row(
        'mutation { setConflictPolicy(project: "clinic", table: "notes", '
        "policy: LAST_WRITER_WINS) { name } }",
        ADMINS,
    ),
    "addProjectMember": Row(
        'mutation { addProjectMember(project: "clinic", user: "zoe") { code } }', ADMINS
    ),
    "removeProjectMember": Row(
        'mutation { removeProjectMember(project: "clinic", user: "zoe") }', ADMINS
    ),
    "writeActions": Row(WRITE, DATA, written),
    "pushRecords": Row(
        'mutation($user: String, $rows: [RecordPushRow!]!) { pushRecords(project: "clinic", '
        'table: "notes", rows: $rows, user: $user) }',
        DATA,
        pushed,
    ),
    "registerPush": Row(
        'mutation($user: String) { registerPush(project: "clinic", fcmToken: "t", '
        'deviceId: "tab", user: $user) { deviceId } }',
        DATA,
        target,
    ),
    "unregisterPush": Row(
        'mutation($user: String) { unregisterPush(project: "clinic", deviceId: "tab", '
        "user: $user) }",
        DATA,
        target,
    ),
    "reportDevice": Row(
        'mutation($user: String) { reportDevice(project: "clinic", deviceId: "tab", '
        "user: $user) { deviceId } }",
        DATA,
        target,
    ),
    "acknowledgeProgress": Row(
        'mutation($user: String) { acknowledgeProgress(project: "clinic", deviceId: "tab", '
        "progress: [], user: $user) }",
        DATA,
        target,
    ),
    "recordSyncEvent": Row(
        'mutation($user: String) { recordSyncEvent(project: "clinic", deviceId: "tab", '
        "direction: PUT, user: $user) { time } }",
        DATA,
        target,
    ),
    "resolveConflict": Row(
        "mutation($id: Int!) { resolveConflict(id: $id, resolution: KEEP_WINNER) { id } }",
        BY_ID,
        open_conflict,
    ),
    "createSync": Row(
        'mutation($user: String, $name: String!) { createSync(project: "clinic", name: $name, '
        "user: $user) { id } }",
        OWN,
        fresh,
    ),
    "startSyncRun": Row(
        "mutation($id: Int!) { startSyncRun(syncId: $id) { id } }", MANAGE_BY_ID, alices_sync
    ),
    "updateSyncRun": Row(
        "mutation($id: Int!) { updateSyncRun(id: $id) { id } }", MANAGE_BY_ID, working_run
    ),
    "completeSyncRun": Row(
        "mutation($id: Int!) { completeSyncRun(id: $id) { id } }", MANAGE_BY_ID, working_run
    ),
    "failSyncRun": Row(
        'mutation($id: Int!) { failSyncRun(id: $id, errorCode: "E") { id } }',
        MANAGE_BY_ID,
        working_run,
    ),
    "cancelSyncRun": Row(
        "mutation($id: Int!) { cancelSyncRun(id: $id) { id } }", MANAGE_BY_ID, working_run
    ),
}

SUBSCRIPTIONS: dict[str, Row] = {
    "databaseActions": Row(
        'subscription($user: String) { databaseActions(project: "clinic", user: $user) '
        "{ hasMore } }",
        DATA,
        target,
    ),
    "recordChanges": Row(
        'subscription($user: String) { recordChanges(project: "clinic", table: "notes", '
        "user: $user) { resync } }",
        DATA,
        target,
    ),
    "deviceStatusChanged": Row(
        'subscription { deviceStatusChanged(project: "clinic") { deviceId } }', PROJECT
    ),
    "heartbeat": Row("subscription { heartbeat(count: 1) { seq } }", ANYONE),
    "syncStatusChanged": Row(
        'subscription($user: String) { syncStatusChanged(project: "clinic", user: $user) '
        "{ syncStatus } }",
        DATA,
        target,
    ),
    "syncRunUpdated": Row('subscription { syncRunUpdated(project: "clinic") { id } }', PROJECT),
}


def test_every_root_field_has_a_row() -> None:
    """A new root field must say who may call it: add its row above."""
    graphql = schema._schema  # the built graphql-core schema
    for root, rows in (
        (graphql.query_type, QUERIES),
        (graphql.mutation_type, MUTATIONS),
        (graphql.subscription_type, SUBSCRIPTIONS),
    ):
        assert root is not None
        assert set(root.fields) == set(rows), f"{root.name}: fields and table rows differ"
    for rows in (QUERIES, MUTATIONS, SUBSCRIPTIONS):
        for name, row in rows.items():
            assert len(row.expected) == len(CALLERS), name


async def make_world(server: GatewayServer) -> World:
    admin = server.client(server.token("root", Role.ADMIN))
    world = World(server, admin)
    await admin.data('mutation { createProject(code: "clinic", name: "Clinic") { code } }')
    await admin.data(
        'mutation { defineTable(project: "clinic", name: "notes", keyField: "k", fields: '
        '[{name: "text", type: STRING, required: true}, {name: "k", type: STRING}]) { name } }'
    )
    for member in ("alice", "bob", "dr-carol", "dr-dan"):
        await admin.data(
            'mutation($u: String!) { addProjectMember(project: "clinic", user: $u) { code } }',
            u=member,
        )
    await admin.data(
        'mutation { grantAccess(project: "clinic", grantee: "dr-carol", user: "alice") { user } }'
    )
    # Each member has a device and a working run of their own (live feeds start with those);
    # alice has a case "k1" on her tablet and a sync of an external job.
    for member in ("alice", "bob", "dr-carol", "dr-dan"):
        await admin.data(
            'mutation($u: String!) { reportDevice(project: "clinic", deviceId: "tab", user: $u) '
            "{ deviceId } }",
            u=member,
        )
        sync = await admin.data(
            'mutation($u: String!) { createSync(project: "clinic", name: "own", user: $u) { id } }',
            u=member,
        )
        await admin.data(
            "mutation($s: Int!) { startSyncRun(syncId: $s) { id } }", s=sync["createSync"]["id"]
        )
        if member == "alice":
            world.alice_sync = int(sync["createSync"]["id"])
    case = {
        "table": "notes", "user": "alice", "action": "INSERT", "recordId": "f" * 32, "time": 1,
        "order": 0, "jsonData": json.dumps({"text": "case", "k": "k1"}),
    }  # fmt: skip
    await admin.data(WRITE, actions=[case], user="alice", deviceId="tab")
    return world


def _outcome(body: dict[str, Any]) -> str:
    errors = body.get("errors")
    if errors:
        return str(errors[0]["extensions"]["code"])
    [answer] = body["data"].values()
    return NULL if answer is None or answer == [None] else OK


async def run_http(world: World, caller: Caller, row: Row) -> str:
    variables = await row.variables(world, caller) if row.variables else {}
    token = world.server.token(caller.user, caller.role) if caller.user else None
    return _outcome(await world.server.client(token).execute(row.document, **variables))


async def run_subscription(world: World, caller: Caller, row: Row) -> str:
    """The first message of a subscription over graphql-transport-ws: data, or its error."""
    variables = await row.variables(world, caller) if row.variables else {}
    payload = {}
    if caller.user:
        payload = {"Authorization": f"Bearer {world.server.token(caller.user, caller.role)}"}
    # An unbounded queue: the messages after the first are never read, and a full queue would
    # keep the client from reading the server's answer to its close.
    async with websockets.connect(
        world.server.ws_url, subprotocols=["graphql-transport-ws"], max_queue=None
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403
            return U  # a connection without a valid token is refused
        assert ack["type"] == "connection_ack"
        subscribe = {"query": row.document, "variables": variables}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": subscribe}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    if message["type"] == "error":
        return str(message["payload"][0]["extensions"]["code"])
    assert message["type"] == "next", message
    return _outcome(message["payload"])


async def test_every_root_field_for_every_caller(server: GatewayServer) -> None:
    world = await make_world(server)
    mismatches = []
    for rows, run in (
        (QUERIES, run_http),
        (MUTATIONS, run_http),
        (SUBSCRIPTIONS, run_subscription),
    ):
        for name, row in rows.items():
            # The callers of one row at once: the cells do not depend on each other.
            outcomes = await asyncio.gather(*(run(world, caller, row) for caller in CALLERS))
            for caller, expected, got in zip(CALLERS, row.expected, outcomes, strict=True):
                if got != expected:
                    mismatches.append(f"{name} by {caller.kind}: expected {expected}, got {got}")
    assert not mismatches, "\n".join(mismatches)
