"""The sync log through GraphQL over real HTTP: what device apps and frontends call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Action, Record
from gateway.settings import Settings
from tests.support import GatewayServer, GraphQLHttp, create_project, error_code, settings_for

WRITE = """mutation(
  $project: String!, $actions: [ActionInput!]!, $deviceId: String, $user: String
) {
  writeActions(project: $project, actions: $actions, deviceId: $deviceId, user: $user) {
    accepted duplicates progress { table user time order }
  }
}"""
READ = """query($project: String!, $progress: [ProgressInput!], $deviceId: String,
             $filter: ActionFilter, $maxCount: Int! = 0, $user: String) {
  actions(project: $project, progress: $progress, deviceId: $deviceId, filter: $filter,
          maxCount: $maxCount, user: $user) {
    actions { table user action recordId jsonData data sampleTime time order source deviceId }
    progress { table user cursor time order }
    hasMore
  }
}"""
SEED_TIME = 1442921356748  # beyond GraphQL's 32-bit Int: a Long
RID = "4beadd197f784a4a8c2e1118915fb0c3"


def action(record: str, kind: str = "INSERT", time: int = SEED_TIME, order: int = 0,
           user: str = "alice", table: str = "steps", **data: Any) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {
        "table": table, "user": user, "action": kind, "recordId": record,
        "time": time, "order": order,
    }  # fmt: skip
    if kind != "DELETE":
        out["jsonData"] = json.dumps(data)
    return out


async def set_up(server: GatewayServer) -> GraphQLHttp:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "study", "Study")
    await admin.data(
        """mutation { defineTable(project: "study", name: "steps", fields: [
             {name: "utcTime", type: INT, required: true}, {name: "localTime", type: DATETIME},
             {name: "timezone", type: STRING}, {name: "value", type: FLOAT, required: true}
           ]) { name } }"""
    )
    await admin.data(
        """mutation { defineTable(project: "study", name: "notes",
             fields: [{name: "text", type: STRING, required: true}]) { name } }"""
    )
    return server.client(server.token("alice", Role.PATIENT))


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    return await set_up(server)


async def stored(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        actions = await session.scalar(select(func.count()).select_from(Action))
        records = await session.scalar(select(func.count()).select_from(Record))
    return actions or 0, records or 0


async def test_the_seeds_write_then_read_through_a_gql_client(
    server: GatewayServer, alice: GraphQLHttp
) -> None:
    seed_data = {
        "user": "alice", "utcTime": 1442737800000, "timezone": "Europe/Berlin",
        "localTime": "2015-09-20T10:30:00.000", "value": 1172.0, "id": RID,
    }  # fmt: skip
    token = server.token("alice", Role.PATIENT)
    transport = HTTPXAsyncTransport(url=server.url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        write = gql(WRITE)
        write.variable_values = {
            "project": "study",
            "deviceId": "3aa96976b8938f04",
            "actions": [{**action(RID), "jsonData": json.dumps(seed_data), "source": "local"}],
        }
        written = await session.execute(write)
        assert written["writeActions"] == {
            "accepted": [0],
            "duplicates": [],
            "progress": [{"table": "steps", "user": "alice", "time": SEED_TIME, "order": 0}],
        }
        read_request = gql(READ)
        read_request.variable_values = {"project": "study"}
        read = await session.execute(read_request)
    batch = read["actions"]
    assert batch["hasMore"] is False
    assert batch["actions"] == [
        {
            "table": "steps", "user": "alice", "action": "INSERT", "recordId": RID,
            "jsonData": json.dumps(seed_data), "data": seed_data, "sampleTime": 1442737800000,
            "time": SEED_TIME, "order": 0, "source": "local", "deviceId": "3aa96976b8938f04",
        }
    ]  # fmt: skip
    progress = {p["table"]: p for p in batch["progress"]}
    assert (progress["steps"]["time"], progress["steps"]["order"]) == (SEED_TIME, 0)
    assert progress["notes"]["time"] is None


async def test_paging_with_progress_read_stats_and_write_progress(alice: GraphQLHttp) -> None:
    actions = [action(f"{n:032x}", time=SEED_TIME + n, utcTime=n, value=1.0) for n in range(1, 8)]
    await alice.data(WRITE, project="study", actions=actions, deviceId="phone")
    stats = await alice.data(
        '{ readStats(project: "study") { count latestTime progress { table } } }'
    )
    assert stats["readStats"] == {"count": 7, "latestTime": SEED_TIME + 7, "progress": []}

    seen, progress = [], None
    for _ in range(10):
        batch = (await alice.data(READ, project="study", progress=progress, maxCount=3))["actions"]
        seen += [a["recordId"] for a in batch["actions"]]
        progress = [{"table": p["table"], "cursor": p["cursor"]} for p in batch["progress"]]
        if not batch["hasMore"]:
            break
    assert seen == [f"{n:032x}" for n in range(1, 8)]
    stats = await alice.data(
        'query($p: [ProgressInput!]) { readStats(project: "study", progress: $p) { count } }',
        p=progress,
    )
    assert stats["readStats"]["count"] == 0

    marks = await alice.data(
        '{ writeProgress(project: "study", deviceId: "phone") { table time order } }'
    )
    assert marks["writeProgress"] == [
        {"table": "notes", "time": None, "order": None},
        {"table": "steps", "time": SEED_TIME + 7, "order": 0},
    ]


async def test_records_are_the_current_data_paged_by_cursor(alice: GraphQLHttp) -> None:
    await alice.data(
        WRITE,
        project="study",
        actions=[
            action("a" * 32, table="notes", text="one"),
            action("b" * 32, table="notes", text="two"),
            action("c" * 32, table="notes", text="three"),
            action("a" * 32, "UPDATE", time=SEED_TIME + 1, table="notes", text="one!"),
            action("b" * 32, "DELETE", time=SEED_TIME + 2, table="notes"),
        ],
    )
    query = """query($after: String, $deleted: Boolean!) {
      records(project: "study", table: "notes", first: 1, after: $after, includeDeleted: $deleted) {
        edges { cursor node { recordId key data jsonData deleted position } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    pages, after = [], None
    while True:
        page = (await alice.data(query, after=after, deleted=False))["records"]
        pages += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [(r["recordId"], r["data"], r["deleted"]) for r in pages] == [
        ("a" * 32, {"text": "one!"}, False),
        ("c" * 32, {"text": "three"}, False),
    ]
    assert pages[0]["jsonData"] == '{"text":"one!"}'
    assert pages[0]["key"] == "a" * 32
    everything = await alice.data(
        '{ records(project: "study", table: "notes", includeDeleted: true) '
        "{ edges { node { deleted } } } }"
    )
    assert [e["node"]["deleted"] for e in everything["records"]["edges"]] == [False, True, False]


async def test_refused_writes_carry_codes_and_every_invalid_action(
    alice: GraphQLHttp, db: Database
) -> None:
    bad = [
        action("1" * 32, utcTime=1, value=1.0),
        action("not-a-uuid", utcTime=1, value=1.0),
        action("2" * 32, utcTime="soon", value=1.0),
        action("3" * 32, user="bob", utcTime=1, value=1.0),
    ]
    error = await alice.error(WRITE, project="study", actions=bad)
    assert error_code(error) == "VALIDATION_FAILED"
    assert [p["index"] for p in error["extensions"]["invalidActions"]] == [1, 2, 3]
    excluded = await alice.error(
        """mutation($a: [ActionInput!]!) { writeActions(
             project: "study", actions: $a, excludeTables: ["steps"]) { accepted } }""",
        a=[action("1" * 32, utcTime=1, value=1.0)],
    )
    assert error_code(excluded) == "TABLE_NOT_ALLOWED"
    unknown_kind = await alice.error(WRITE, project="study", actions=[action("1" * 32, "UPSERT")])
    assert error_code(unknown_kind) == "BAD_USER_INPUT"
    assert await stored(db) == (0, 0)


async def test_conflicting_rewrite_and_duplicate_retry(alice: GraphQLHttp, db: Database) -> None:
    first = [action("1" * 32, utcTime=1, value=1.0)]
    await alice.data(WRITE, project="study", actions=first)
    again = await alice.data(WRITE, project="study", actions=first)
    assert again["writeActions"]["duplicates"] == [0]
    changed = [action("1" * 32, utcTime=1, value=2.0)]
    assert error_code(await alice.error(WRITE, project="study", actions=changed)) == "CONFLICT"
    assert await stored(db) == (1, 1)


async def test_batch_limit_is_a_setting(migrated_url: str, db: Database) -> None:
    settings: Settings = settings_for(migrated_url, max_write_batch=2)
    with GatewayServer.running(settings) as server:
        alice = await set_up(server)
        three = [action(f"{n:032x}", utcTime=n, value=1.0) for n in range(1, 4)]
        error = await alice.error(WRITE, project="study", actions=three)
        assert (error_code(error), error["extensions"]["limit"]) == ("LIMIT_EXCEEDED", 2)
    assert await stored(db) == (0, 0)


async def test_access_per_role_through_the_api(server: GatewayServer, alice: GraphQLHttp) -> None:
    await alice.data(WRITE, project="study", actions=[action("1" * 32, utcTime=1, value=1.0)])
    bob = server.client(server.token("bob", Role.PATIENT))
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    assert error_code(await bob.error(READ, project="study", user="alice")) == "FORBIDDEN"
    assert error_code(await carol.error(READ, project="study", user="alice")) == "FORBIDDEN"
    await alice.data('mutation { grantAccess(project: "study", grantee: "dr-carol") { user } }')
    read = await carol.data(READ, project="study", user="alice")
    assert [a["user"] for a in read["actions"]["actions"]] == ["alice"]
    assert error_code(await server.client().error(READ, project="study")) == "UNAUTHENTICATED"
    write_for_alice = [action("2" * 32, utcTime=1, value=1.0)]
    refused = await bob.error(WRITE, project="study", actions=write_for_alice, user="alice")
    assert error_code(refused) == "FORBIDDEN"


async def test_bad_read_arguments_are_bad_user_input(alice: GraphQLHttp) -> None:
    garbage = await alice.error(
        READ, project="study", progress=[{"table": "steps", "cursor": "??"}]
    )
    assert error_code(garbage) == "BAD_USER_INPUT"
    twice = [{"table": "steps", "cursor": "x"}, {"table": "steps", "cursor": "y"}]
    assert error_code(await alice.error(READ, project="study", progress=twice)) == "BAD_USER_INPUT"
    negative = await alice.error(READ, project="study", maxCount=-1)
    assert error_code(negative) == "BAD_USER_INPUT"
    missing = await alice.error(READ, project="nope")
    assert error_code(missing) == "NOT_FOUND"


async def test_a_first_read_comes_from_the_records_unless_it_asks_for_the_history(
    alice: GraphQLHttp,
) -> None:
    note = "0000000000000000000000000000000a"
    gone = "0000000000000000000000000000000b"
    history = [
        action(note, table="notes", order=1, text="draft"),
        action(gone, table="notes", order=2, text="mistake"),
    ]
    await alice.data(WRITE, project="study", actions=history, deviceId="phone")
    later = [action(note, "UPDATE", table="notes", order=3, text="final"),
             action(gone, "DELETE", table="notes", order=4)]  # fmt: skip
    await alice.data(WRITE, project="study", actions=later, deviceId="phone")

    async def first_page(snapshot: bool) -> list[tuple[str, str, Any]]:
        query = READ.replace("$user: String)", "$user: String, $snapshot: Boolean!)").replace(
            "user: $user)", "user: $user, snapshot: $snapshot)"
        )
        found = await alice.data(query, project="study", deviceId="laptop", maxCount=1,
                                 snapshot=snapshot)  # fmt: skip
        return [(a["recordId"], a["action"], a["data"]) for a in found["actions"]["actions"]]

    # the laptop's first sync: each live record once, as it is now
    assert await first_page(snapshot=True) == [(note, "INSERT", {"text": "final"})]
    # or, when it asks for it, the history from the first action
    assert await first_page(snapshot=False) == [(note, "INSERT", {"text": "draft"})]
