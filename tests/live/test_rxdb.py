"""RxDB, the offline-first JavaScript database, replicating a table through the gateway with
its GraphQL replication (``replicateGraphQL``) and ``clients/rxdb``, in Node, on each database:
a first sync larger than a page, live changes both ways beside a device that writes actions,
deletes, offline writes, a conflict that reaches RxDB's conflict handler, and a live stream
that outlives its first token (tests/node/rxdb_replication.mjs).

Without Node or tests/node/node_modules (``npm ci --prefix tests/node``; .ci/run does it) the
test skips and says why, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from gateway.auth.principal import Role
from tests.support import TEST_SECRET, GatewayServer, create_project
from tests.support.node import NODE_PROJECT, node_or_skip

INITIAL, BATCH = 25, 10  # a first sync of three pages


def rid(n: int) -> str:
    return f"{n:032x}"


async def _prepare(server: GatewayServer) -> str:
    """The project, its notes table, and alice's notes written by her phone: 25 inserts and a
    partial update (only `done`), which a whole document must not lose `text` to."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "rx", "RxDB", members=("alice",))
    await admin.data(
        'mutation { defineTable(project: "rx", name: "notes", fields: ['
        '{name: "text", type: STRING, required: true}, {name: "done", type: BOOLEAN}]) { name } }'
    )
    token = server.token("alice", Role.PATIENT)
    actions = [
        {"table": "notes", "user": "alice", "action": "INSERT", "recordId": rid(n), "time": n,
         "order": 0, "jsonData": json.dumps({"text": f"#{n}", "done": False})}
        for n in range(INITIAL)
    ] + [
        {"table": "notes", "user": "alice", "action": "UPDATE", "recordId": rid(3),
         "time": 1000, "order": 0, "jsonData": json.dumps({"done": True})},
    ]  # fmt: skip
    await server.client(token).data(
        'mutation($a: [ActionInput!]!) { writeActions(project: "rx", deviceId: "phone", '
        "actions: $a) { accepted } }",
        a=actions,
    )
    return token


async def _server_documents(server: GatewayServer) -> dict[str, Any]:
    """Alice's records, as an admin sees them (the test ends with alice no longer a member)."""
    admin = server.client(server.token("root", Role.ADMIN))
    found = await admin.data(
        '{ records(project: "rx", table: "notes", user: "alice", first: 500) { edges { node { '
        "recordId data } } } }"
    )
    return {e["node"]["recordId"]: e["node"]["data"] for e in found["records"]["edges"]}


def test_rxdb_replicates_a_table_both_ways(server: GatewayServer) -> None:
    node = node_or_skip("rxdb", "the RxDB replication test")
    token = asyncio.run(_prepare(server))
    arguments = {"url": server.url, "token": token, "secret": TEST_SECRET, "project": "rx",
                 "table": "notes", "batchSize": BATCH}  # fmt: skip
    run = subprocess.run(
        [node, str(NODE_PROJECT / "rxdb_replication.mjs"), json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=NODE_PROJECT,
    )
    sys.stderr.write(run.stderr)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    steps = result["steps"]

    # The first sync went on past its first page, and kept the fields of the partial update.
    assert steps["initial"]["count"] == INITIAL
    partial = steps["initial"]["partiallyUpdated"]
    assert (partial["text"], partial["done"]) == ("#3", True)
    # The phone's partial update reached RxDB as a whole document too.
    assert steps["phoneToRxdb"]["updated"]["text"] == "#4"
    assert steps["rxdbToServer"]["inserted"]["data"] == {"text": "from RxDB"}
    assert steps["deletes"]["onServer"] is True and steps["deletes"]["inRxdb"] is True
    assert steps["offline"]["onServer"][3] == {"text": "#2", "done": True}
    assert result["conflicts"][0] == {"mine": "mine", "theirs": "theirs"}
    # A token that expired under a live stream: clients/rxdb reconnected with a fresh one
    # before, and changes kept coming.
    assert steps["tokenRefresh"]["shortTokenUses"] >= 1
    assert steps["tokenRefresh"]["freshTokens"] >= 1
    assert steps["tokenRefresh"]["received"]["text"] == "after the first token expired"

    # Nothing failed on the way; losing access mid-stream reached the app as a coded error
    # (the stream's error, then the pulls'), and the client did not crash.
    assert steps["streamError"]["before"] == 0, result["errors"]
    assert set(steps["streamError"]["codes"]) == {"FORBIDDEN"}

    # In the end RxDB holds exactly the server's records, field for field.
    server_docs = asyncio.run(_server_documents(server))
    rxdb = {k: {f: v for f, v in d.items() if f != "id"} for k, d in result["rxdb"].items()}
    assert rxdb == server_docs
    assert server_docs[rid(6)] == {"text": "theirs + mine", "done": False}
