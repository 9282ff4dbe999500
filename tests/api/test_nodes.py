"""Global ids and ``node(id)`` / ``nodes(ids)``: every cacheable type is fetched again by the id
an answer gave it, and an id the caller may not see answers exactly like an id of nothing."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, error_code
from tests.support.live import make_project, write_notes

# Each cacheable Node type as a client first meets it, and the fields it compares after.
SEEN = """{
  project(code: "live") { id code name tables { id name keyField } }
  records(project: "live", table: "notes") { edges { node { id recordId data deleted } } }
  device(project: "live", deviceId: "phone") { id deviceId owner version }
  syncHistory(project: "live") { edges { node { id deviceId direction user } } }
  me { grants { id project user grantee } }
}"""
REGISTER = """mutation { registerPush(project: "live", fcmToken: "tok", deviceId: "phone")
  { id project user deviceId fcmToken } }"""
FIELDS = """
  __typename id
  ... on Project { code name }
  ... on Table { name keyField }
  ... on Record { recordId data deleted }
  ... on Device { deviceId owner version }
  ... on SyncEvent { deviceId direction user }
  ... on AccessGrant { project user grantee }
  ... on PushRegistration { project user deviceId fcmToken }
"""
NODES = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {FIELDS} }} }}"
NODE = f"query($id: ID!) {{ node(id: $id) {{ {FIELDS} }} }}"


@dataclass
class Seen:
    """Alice's objects, keyed by type name, as the fields that list them answered."""

    objects: dict[str, dict[str, Any]]

    @property
    def ids(self) -> dict[str, str]:
        return {name: o["id"] for name, o in self.objects.items()}


async def alices_objects(server: GatewayServer) -> Seen:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    await write_notes(alice, [1], device="phone")
    await alice.data('mutation { reportDevice(project: "live", deviceId: "phone", version: "2") '
                     "{ deviceId } }")  # fmt: skip
    await alice.data('mutation { grantAccess(project: "live", grantee: "dr-carol") { user } }')
    pushed = (await alice.data(REGISTER))["registerPush"]
    seen = await alice.data(SEEN)
    project = seen["project"]
    [table, *_] = [t for t in project.pop("tables") if t["name"] == "notes"]
    [record] = [e["node"] for e in seen["records"]["edges"]]
    [event] = [e["node"] for e in seen["syncHistory"]["edges"]]
    [grant] = seen["me"]["grants"]
    objects = {
        "Project": project, "Table": table, "Record": record, "Device": seen["device"],
        "SyncEvent": event, "AccessGrant": grant, "PushRegistration": pushed,
    }  # fmt: skip
    return Seen({name: {"__typename": name, **o} for name, o in objects.items()})


def as_caller(server: GatewayServer, user: str, role: Role = Role.PATIENT) -> GraphQLHttp:
    return server.client(server.token(user, role))


async def test_every_node_type_round_trips_and_ids_are_stable(server: GatewayServer) -> None:
    seen = await alices_objects(server)
    alice = as_caller(server, "alice")
    ids = list(seen.ids.values())
    assert len(set(ids)) == len(ids), "every object has an id of its own"
    assert all(i.replace("-", "").replace("_", "").isalnum() for i in ids), "URL-safe"
    # The same ids in a second answer (stable across requests) ...
    again = await alices_objects_ids(alice)
    assert again == {n: seen.ids[n] for n in again}
    # ... and each fetches its object again, alone and all at once, in the order given.
    found = (await alice.data(NODES, ids=ids))["nodes"]
    assert found == list(seen.objects.values())
    for name, global_id in seen.ids.items():
        assert (await alice.data(NODE, id=global_id))["node"] == seen.objects[name]


async def alices_objects_ids(alice: GraphQLHttp) -> dict[str, str]:
    data = await alice.data(SEEN)
    return {
        "Project": data["project"]["id"],
        "Record": data["records"]["edges"][0]["node"]["id"],
        "Device": data["device"]["id"],
        "SyncEvent": data["syncHistory"]["edges"][0]["node"]["id"],
    }


async def test_ids_others_may_not_see_are_null_as_if_there_were_none(
    server: GatewayServer,
) -> None:
    seen = await alices_objects(server)
    names = list(seen.ids)
    ids = list(seen.ids.values())

    async def visible(caller: GraphQLHttp) -> set[str]:
        found = (await caller.data(NODES, ids=ids))["nodes"]
        return {name for name, node in zip(names, found, strict=True) if node is not None}

    everything = set(names)
    project_only = {"Project", "Table"}
    assert await visible(as_caller(server, "root", Role.ADMIN)) == everything
    # bob is a member (sees the project) but not allowed alice's data.
    assert await visible(as_caller(server, "bob")) == project_only
    # dr-carol has alice's grant: all of her data (her push registration too: whoever may
    # see a user's data may register that user's devices) and the grant itself.
    assert await visible(as_caller(server, "dr-carol", Role.PROFESSIONAL)) == everything
    # jackw is a member without a grant; carl is no member.
    assert await visible(as_caller(server, "jackw", Role.PROFESSIONAL)) == project_only
    assert await visible(as_caller(server, "carl")) == set()

    # An id of something gone answers the same null.
    alice = as_caller(server, "alice")
    await alice.data('mutation { unregisterPush(project: "live", deviceId: "phone") }')
    await alice.data('mutation { revokeAccess(project: "live", grantee: "dr-carol") }')
    gone = await alice.data(NODES, ids=[seen.ids["PushRegistration"], seen.ids["AccessGrant"]])
    assert gone == {"nodes": [None, None]}
    # ... and dr-carol no longer sees alice's device once the grant is withdrawn.
    carol = as_caller(server, "dr-carol", Role.PROFESSIONAL)
    assert (await carol.data(NODE, id=seen.ids["Device"])) == {"node": None}


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


MALFORMED = [
    "",
    "x",
    "!!!not base64!!!",
    _b64("Device"),  # no key
    _b64("Device:not json"),
    _b64('Device:{"a": 1}'),  # not a list
    _b64('Device:["live","alice"]'),  # one part short
    _b64('SyncEvent:["1"]'),  # a string where the key is a number
    _b64("SyncEvent:[true]"),
    _b64("Sync:[1]"),  # Sync keeps its Int id and is no Node
    _b64('Nope:["live"]'),  # no such type
    _b64('Device:["live","","phone"]'),  # an empty user is not "yours" here
    _b64('Project:["no-such-project"]'),
    "A" * 5000,
    base64.urlsafe_b64encode(b"\xff\xfe:[]").decode(),  # not UTF-8
]


async def test_malformed_and_unknown_ids_are_null(server: GatewayServer) -> None:
    await make_project(server)
    alice = as_caller(server, "alice")
    await write_notes(alice, [1], device="phone")  # her phone exists, under her own id
    body = await alice.execute(NODES, ids=MALFORMED)
    assert body == {"data": {"nodes": [None] * len(MALFORMED)}}
    assert await alice.execute(NODE, id="x") == {"data": {"node": None}}


async def test_nodes_takes_at_most_the_limit_and_callers_must_sign_in(
    server: GatewayServer,
) -> None:
    await make_project(server)
    alice = as_caller(server, "alice")
    most = server.settings.max_node_ids
    project = (await alice.data('{ project(code: "live") { id } }'))["project"]["id"]
    assert (await alice.data(NODES, ids=[project] * most))["nodes"] == [
        {"__typename": "Project", "id": project, "code": "live", "name": "Live"}
    ] * most
    error = await alice.error(NODES, ids=[project] * (most + 1))
    assert error_code(error) == "LIMIT_EXCEEDED"
    assert error["extensions"]["max"] == most
    anonymous = server.client()
    assert error_code(await anonymous.error(NODE, id=project)) == "UNAUTHENTICATED"


async def test_a_device_by_id_carries_its_health_as_listed(server: GatewayServer) -> None:
    await make_project(server)
    alice = as_caller(server, "alice")
    await write_notes(alice, [1, 2], device="phone")
    listed = await alice.data('{ devices(project: "live") { id status pendingDown lastSync } }')
    [device] = listed["devices"]
    fields = "... on Device { id status pendingDown lastSync }"
    found = await alice.data(
        f"query($id: ID!) {{ one: node(id: $id) {{ {fields} }} "
        f"many: nodes(ids: [$id]) {{ {fields} }} }}",
        id=device["id"],
    )
    assert found == {"one": device, "many": [device]}
