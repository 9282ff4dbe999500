"""SenSeeAct's sync controller through the REST adapter: every example of the seed document
(../shared/seeds/senseeact-sync-controller.txt) replayed, its answer compared field by field,
and its error behaviour as HTTP statuses (both databases, real HTTP through uvicorn).

Where the answer differs from the seed's example by design: a read's ``order`` is the action's
log id (see gateway/sync/seed_progress.py), compared as such. The read and watch examples
restrict ``steps`` to [1442872800000, 1442959200000) while their answer's sampleTime is
1442737800000, outside it; they are replayed with the range's start at 1442700000000 so that
the example's own answer can come back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Action, PushRegistration
from tests.support import GatewayServer, settings_for
from tests.support.senseeact import SEED_USER, SenSeeAct, seed_project

SEED_DATA = (
    '{"user":"b43f784d76c44e7a9ae0370b91521753","utcTime":1442737800000,'
    '"timezone":"Europe/Berlin","localTime":"2015-09-20T10:30:00.000","value":1172.0,'
    '"id":"4beadd197f784a4a8c2e1118915fb0c3"}'
)
SEED_ACTION = {
    "table": "steps",
    "user": SEED_USER,
    "action": "INSERT",
    "recordId": "4beadd197f784a4a8c2e1118915fb0c3",
    "jsonData": SEED_DATA,
    "sampleTime": 1442737800000,
    "time": 1442921356748,
    "order": 0,
    "source": "local",
    "author": None,
}
WRITE_EXAMPLE = {"actions": [SEED_ACTION], "includeTables": ["steps"], "excludeTables": []}
SEED_PROGRESS = [{"table": "steps", "time": 1442921321997, "order": 0}]
RANGE = [{"table": "steps", "startTime": 1442872800000, "endTime": 1442959200000}]
READ_EXAMPLE = {
    "maxCount": 1000,
    "maxTime": 1442921356748,
    "includeOwn": False,
    "progress": SEED_PROGRESS,
    "includeTables": ["steps"],
    "excludeTables": [],
    "timeRangeRestrictions": [{**RANGE[0], "startTime": 1442700000000}],
}
STATS_EXAMPLE = {k: v for k, v in READ_EXAMPLE.items() if k not in ("maxCount", "maxTime")}
WATCH_EXAMPLE = {k: v for k, v in READ_EXAMPLE.items() if k not in ("maxTime", "includeOwn")}


def same_shape(answer: dict[str, Any], example: dict[str, Any]) -> None:
    """Field by field: the same names, and values of the same JSON types."""
    assert list(answer) == list(example)
    for name, value in example.items():
        assert type(answer[name]) is type(value), name


async def positions(db: Database) -> list[int]:
    async with db.session() as session:
        return list(await session.scalars(select(Action.id).order_by(Action.id)))


@pytest.fixture
async def seed(server: GatewayServer) -> SenSeeAct:
    await seed_project(server)
    return SenSeeAct(server, server.token(SEED_USER, Role.PATIENT))


@pytest.fixture
def server_side(server: GatewayServer) -> SenSeeAct:
    """Who writes the examples' action for their reads: not the reader, since the examples
    read it as ``source: "local"`` with ``includeOwn: false`` (the reader's own writes are
    "remote", and left out)."""
    return SenSeeAct(server, server.token("root", Role.ADMIN))


async def test_write_example_then_get_progress_example(seed: SenSeeAct, db: Database) -> None:
    answer = await seed.post("write", WRITE_EXAMPLE, user=SEED_USER)
    assert (answer.status_code, answer.content) == (200, b"")  # the seed's empty Response
    assert len(await positions(db)) == 1
    # The fixture for get-progress' example: the last action written at 1442927787758.
    later = {**SEED_ACTION, "action": "UPDATE", "jsonData": '{"value":1200.0}'}
    later["time"] = 1442927787758
    await seed.ok("write", {"actions": [later]}, user=SEED_USER)
    got = await seed.ok(
        "get-progress", {"includeTables": ["steps"], "excludeTables": []}, user=SEED_USER
    )
    example = [{"table": "steps", "user": SEED_USER, "time": 1442927787758, "order": 0}]
    assert got == example
    # A retried write is a no-op, as the domain's idempotency makes it.
    await seed.ok("write", WRITE_EXAMPLE, user=SEED_USER)
    assert len(await positions(db)) == 2


async def test_read_example(seed: SenSeeAct, server_side: SenSeeAct, db: Database) -> None:
    await server_side.ok("write", WRITE_EXAMPLE, user=SEED_USER)
    got = await seed.ok("read", READ_EXAMPLE, user=SEED_USER)
    [logged] = await positions(db)
    assert len(got) == 1
    same_shape(got[0], SEED_ACTION | {"author": None})
    assert got[0] == {**SEED_ACTION, "order": logged}  # order: the log id (by design)
    assert json.loads(got[0]["jsonData"]) == json.loads(SEED_DATA)
    # With that action's (time, order) as progress, nothing comes again.
    again = {
        **READ_EXAMPLE,
        "progress": [{"table": "steps", "time": 1442921356748, "order": logged}],
    }
    assert await seed.ok("read", again, user=SEED_USER) == []
    # The example's own range leaves the record out (its sampleTime is before the start).
    assert await seed.ok("read", {**READ_EXAMPLE, "timeRangeRestrictions": RANGE}) == []


async def test_get_read_stats_example(seed: SenSeeAct, server_side: SenSeeAct) -> None:
    await server_side.ok("write", WRITE_EXAMPLE, user=SEED_USER)
    got = await seed.ok("get-read-stats", STATS_EXAMPLE, user=SEED_USER)
    example = {
        "progress": [{"table": "steps", "user": None, "time": 1442921321997, "order": 0}],
        "count": 1,
        "latestTime": 1442921356748,
    }
    assert got == example
    # Without any progress or content at all: every action.
    empty = await seed.post("get-read-stats", None)
    assert empty.json() == {"progress": None, "count": 1, "latestTime": 1442921356748}


async def test_watch_example(seed: SenSeeAct, server_side: SenSeeAct, db: Database) -> None:
    await server_side.ok("write", WRITE_EXAMPLE, user=SEED_USER)
    got = await seed.ok("watch", WATCH_EXAMPLE, user=SEED_USER)
    [logged] = await positions(db)
    example = {"resultCode": "OK", "actions": [SEED_ACTION]}
    same_shape(got, example)
    assert got == {"resultCode": "OK", "actions": [{**SEED_ACTION, "order": logged}]}


async def test_push_examples(seed: SenSeeAct, db: Database) -> None:
    register = {
        "fcmToken": "...",
        "deviceId": "3aa96976b8938f04",
        "includeTables": ["steps"],
        "excludeTables": [],
    }
    answer = await seed.post("register-push", register, user=SEED_USER)
    assert (answer.status_code, answer.content) == (200, b"")
    async with db.session() as session:
        [(device, token)] = (
            await session.execute(select(PushRegistration.device_id, PushRegistration.token))
        ).all()
    assert (device, token) == ("3aa96976b8938f04", "...")
    answer = await seed.post("unregister-push", user=SEED_USER, deviceId="3aa96976b8938f04")
    assert (answer.status_code, answer.content) == (200, b"")
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PushRegistration)) == 0


def test_watch_times_out_and_knows_no_data(migrated_url: str) -> None:
    settings = settings_for(migrated_url, senseeact_watch_seconds=0.3)
    with GatewayServer.running(settings) as server:

        async def run() -> None:
            await seed_project(server)
            admin = server.client(server.token("root", Role.ADMIN))
            await admin.data('mutation { createProject(code: "empty", name: "E") { code } }')
            alice = SenSeeAct(server, server.token("alice", Role.PATIENT))
            assert await alice.ok("watch", {}) == {"resultCode": "TIMEOUT", "actions": None}
            root = SenSeeAct(server, server.token("root", Role.ADMIN), project="empty")
            assert await root.ok("watch", None) == {"resultCode": "NO_DATA", "actions": None}

        asyncio.run(run())


BAD = "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("endpoint", "content", "params", "status", "code"),
    [
        ("read", {"maxCount": -1}, {}, 400, BAD),
        ("read", {"maxCount": "ten"}, {}, 400, BAD),
        ("read", {"progress": [{"table": "steps", "time": -1, "order": 0}]}, {}, 400, BAD),
        ("read", {"progress": [{"table": "nope", "time": 1, "order": 0}]}, {}, 400, BAD),
        ("read", {"progress": [{"table": "steps", "time": 1, "order": 2**40}]}, {}, 400, BAD),
        ("read", [1, 2], {}, 400, BAD),
        ("read", {}, {"user": "bob"}, 403, "FORBIDDEN"),
        ("get-read-stats", {"includeOwn": "yes"}, {}, 400, BAD),
        ("write", {}, {}, 400, BAD),
        ("write", {"actions": [{**SEED_ACTION, "action": "MERGE"}]}, {}, 400, BAD),
        ("write", {"actions": [{**SEED_ACTION, "time": 2**70}]}, {}, 400, BAD),
        ("write", {"actions": [{**SEED_ACTION, "jsonData": "{"}]}, {}, 400, "VALIDATION_FAILED"),
        ("write", {"actions": [SEED_ACTION], "excludeTables": ["steps"]}, {}, 403,
         "TABLE_NOT_ALLOWED"),
        ("get-progress", {"includeTables": "steps"}, {}, 400, BAD),
        ("watch", {"timeRangeRestrictions": [{"table": "steps"}]}, {}, 400, BAD),
        ("register-push", {"deviceId": "d"}, {}, 400, BAD),
        ("unregister-push", None, {}, 400, BAD),
    ],
)  # fmt: skip
async def test_bad_input_is_a_coded_4xx_and_changes_nothing(
    seed: SenSeeAct,
    db: Database,
    endpoint: str,
    content: Any,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    answer = await seed.post(endpoint, content, **params)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert await positions(db) == []


async def test_auth_and_unknown_project(server: GatewayServer, seed: SenSeeAct) -> None:
    anonymous = SenSeeAct(server, None)
    answer = await anonymous.post("read", {})
    assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED")
    forged = SenSeeAct(server, "not-a-token")
    assert (await forged.post("read", {})).status_code == 401
    elsewhere = SenSeeAct(server, server.token(SEED_USER, Role.PATIENT), project="nope")
    answer = await elsewhere.post("read", {})
    assert (answer.status_code, answer.json()["code"]) == (404, "NOT_FOUND")
    # The Bearer header works as well as X-Auth-Token.
    bearer = SenSeeAct(server, None)
    bearer.headers = {"Authorization": f"Bearer {server.token(SEED_USER, Role.PATIENT)}"}
    assert await bearer.ok("read", None) == []


def step(record_id: str) -> dict[str, Any]:
    data = {**json.loads(SEED_DATA), "id": record_id}
    return {**SEED_ACTION, "recordId": record_id, "jsonData": json.dumps(data)}


async def test_include_own_without_a_device_id(
    server: GatewayServer, seed: SenSeeAct, server_side: SenSeeAct
) -> None:
    """The reader's own writes (made without a deviceId) are left out unless includeOwn, and
    then come as "remote"; a write by someone else, or by a device, is "local"."""
    mine, theirs, devices = SEED_ACTION["recordId"], "6" * 32, "7" * 32
    await seed.ok("write", WRITE_EXAMPLE)
    await server_side.ok("write", {"actions": [step(theirs)]}, user=SEED_USER)
    await seed.ok("write", {"actions": [step(devices)]}, deviceId="phone")
    hidden = await seed.ok("read", {"includeOwn": False})
    assert [(a["recordId"], a["source"]) for a in hidden] == [
        (theirs, "local"),
        (devices, "local"),
    ]
    shown = await seed.ok("read", {"includeOwn": True})
    assert [(a["recordId"], a["source"]) for a in shown] == [
        (mine, "remote"),
        (theirs, "local"),
        (devices, "local"),
    ]
    assert (await seed.ok("get-read-stats", {}))["count"] == 2
    # The same rule through GraphQL: a read without a deviceId, from the log or a snapshot.
    graphql = server.client(server.token(SEED_USER, Role.PATIENT))
    for snapshot in ("false", "true"):
        got = await graphql.data(
            f'{{ actions(project: "default", snapshot: {snapshot}) {{ actions {{ recordId }} }} }}'
        )
        assert sorted(a["recordId"] for a in got["actions"]["actions"]) == [theirs, devices]
    got = await graphql.data(
        '{ actions(project: "default", snapshot: false, filter: {includeOwn: true}) '
        "{ actions { recordId source } } }"
    )
    assert [(a["recordId"], a["source"]) for a in got["actions"]["actions"]] == [
        (mine, "remote"),
        (theirs, "local"),
        (devices, "local"),
    ]
