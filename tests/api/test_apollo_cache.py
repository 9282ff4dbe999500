"""Apollo Client's normalized cache (the real package, in Node: tests/node/apollo_cache.mjs)
against a running gateway: every cacheable object comes back with an `id`, is stored once per
`__typename` and id, and a mutation's answer updates the lists that showed it, without asking
the gateway again, and so does a live message of a subscription (GraphQLWsLink). Skips
without Node, as the GraphQL-over-HTTP audit does."""

from __future__ import annotations

import asyncio
import json

from gateway.auth.principal import Role
from tests.support import GatewayServer
from tests.support.live import make_project, write_notes
from tests.support.node import NODE_PROJECT, node_or_skip


async def test_apollo_normalizes_every_cacheable_object(server: GatewayServer) -> None:
    node = node_or_skip("@apollo/client", "the Apollo cache test")
    await make_project(server)
    token = server.token("alice", Role.PATIENT)
    alice = server.client(token)
    await write_notes(alice, [1, 2], device="phone")
    await alice.data('mutation { reportDevice(project: "live", deviceId: "phone", '
                     'version: "1.0") { deviceId } }')  # fmt: skip
    sync = await alice.data('mutation { createSync(project: "live", name: "job") { id } }')
    run = await alice.data(
        "mutation($s: Int!) { startSyncRun(syncId: $s) { id } }", s=sync["createSync"]["id"]
    )
    run_id = run["startSyncRun"]["id"]

    script = NODE_PROJECT / "apollo_cache.mjs"
    done = await asyncio.create_subprocess_exec(
        node, str(script), server.url, token, "live", str(run_id),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(done.communicate(), 60)
    assert done.returncode == 0, stderr.decode()
    out = json.loads(stdout)
    listed, cached = out["listed"], out["cached"]

    # Each object is an entry of its own, keyed by type and id (nothing stored inside a list).
    expected = {f"Project:{listed['project']['id']}"}
    expected |= {f"Table:{t['id']}" for t in listed["project"]["tables"]}
    expected |= {f"Device:{d['id']}" for d in listed["devices"]}
    expected |= {f"Record:{e['node']['id']}" for e in listed["records"]["edges"]}
    expected |= {f"SyncEvent:{e['node']['id']}" for e in listed["syncHistory"]["edges"]}
    expected |= {f"SyncRun:{r['id']}" for r in listed["projectSyncRuns"]["data"]}
    expected |= {f"Sync:{s['id']}" for s in listed["syncs"]}
    assert expected <= set(out["keysAfterQuery"])
    assert len(listed["records"]["edges"]) == 2 and listed["syncHistory"]["edges"]

    # The mutations' answers (only id and the changed field) show in the cached lists.
    [device] = cached["devices"]
    assert device["version"] == "9.9"
    [run_now] = [r for r in cached["projectSyncRuns"]["data"] if r["id"] == run_id]
    assert run_now["currentStep"] == "step 2"
    # node(id) answers into the same entry as the list's record: no new key appears.
    first = listed["records"]["edges"][0]["node"]
    assert out["node"] == {"__typename": "Record", **first}
    assert set(out["keysAtEnd"]) - set(out["keysAfterQuery"]) <= {"ROOT_MUTATION"}
    # A live message about the phone (another device wrote what it has not received) updated
    # the phone in the devices list, read from the cache alone.
    assert out["live"]["status"] != out["before"]
    assert out["afterLive"]["status"] == out["live"]["status"]
    assert out["afterLive"]["id"] == device["id"]
