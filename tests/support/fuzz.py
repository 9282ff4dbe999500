"""Schema-driven fuzzing of a running gateway (tests/api/test_fuzz.py).

- ``operations(world)``: a hypothesis strategy of operations built from the graphql-core schema
  (``schema._schema``): random root fields with mostly type-valid, sometimes invalid arguments
  (nasty strings, integer and time edges, enum values, lists, nested input objects, actions
  with random jsonData), random selection sets, and now and then broken syntax, unknown
  fields, bad variables or WebSocket protocol junk. String arguments are mostly values the
  world has (projects, tables, users, devices, record ids, cursors, object ids), so that valid
  operations reach deep code paths rather than stopping at "no such project".
- ``make_world(server)``: that world, made over HTTP: projects with tables, members, actions
  from several devices, a conflict, syncs and runs, push registrations.
- ``Fuzzer``: sends an operation over HTTP, graphql-transport-ws or the legacy graphql-ws as
  an admin, a patient, a professional or anonymously, and raises ``Broken`` when the gateway
  misbehaves: an HTTP 5xx, an error coded ``INTERNAL_SERVER_ERROR`` or not coded at all, a
  WebSocket closed as failed, no answer in time (a hang), an error the gateway logged, or
  /healthz no longer answering (a crash).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import websockets
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from gateway.graphql.schema import schema
from tests.support import _TLS, GatewayServer, GraphQLHttp

_S = TypeVar("_S")
SCHEMA = schema._schema  # the built graphql-core schema
HANG_SECONDS = 10.0  # an answer later than this is a hang (the server's own budget is 30 s)
# A subscription quiet this long has said what it had to say (before its first message: twice).
SUBSCRIPTION_IDLE_SECONDS = 0.05
SUBSCRIPTION_MESSAGES = 3  # messages read from a subscription at most
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# Close codes that mean the gateway failed, not that it refused the client.
FAILED_CLOSE_CODES = {1006, 1011, 1012, 1013, 1014, 4500}


class Broken(AssertionError):
    """The gateway misbehaved: what was sent and what came back."""


# ---------------------------------------------------------------------------------------------
# The world


@dataclass(eq=False)  # hashed by identity: strategies are cached per world
class World:
    """What the fuzzer aims at: names and ids that exist. (Loose operations add names that do
    not, see BAD_NAMES.)"""

    projects: list[str]
    tables: list[str]
    users: list[str]
    devices: list[str]
    record_ids: list[str]
    records: dict[str, list[str]]  # alice's live records in "clinic", by table
    keys: list[str]
    positions: list[int]
    sync_ids: list[int]
    run_ids: list[int]
    conflict_ids: list[int]
    progress_cursors: list[str]
    relay_cursors: dict[str, list[str]]  # by the root field that hands them out
    global_ids: list[str] = field(default_factory=list)  # Node ids, for node and nodes
    tokens: dict[str, str | None] = field(default_factory=dict)  # caller -> token

    def ids_for(self, root_field: str) -> list[int]:
        """The ids an ``id`` or ``syncId`` argument of ``root_field`` names."""
        if root_field in ("sync", "syncRuns", "startSyncRun", "syncRunUpdated"):
            return self.sync_ids
        if root_field == "resolveConflict":
            return self.conflict_ids
        return self.run_ids


CALLERS = {  # caller -> (user, role); None: anonymous
    "admin": ("root", Role.ADMIN),
    "patient": ("alice", Role.PATIENT),
    "professional": ("dr-carol", Role.PROFESSIONAL),
    "anonymous": None,
}
MEMBERS = ("alice", "bob", "dr-carol")
NOTES_FIELDS = (
    '[{name: "text", type: STRING, required: true}, {name: "k", type: STRING}, '
    '{name: "done", type: BOOLEAN}, {name: "extra", type: JSON}]'
)
STEPS_FIELDS = (
    '[{name: "utcTime", type: INT, required: true}, {name: "value", type: FLOAT, required: true}, '
    '{name: "localTime", type: DATETIME}]'
)
MOODS_FIELDS = '[{name: "localTime", type: DATETIME, required: true}, {name: "score", type: INT}]'
WRITE = """mutation($p: String!, $actions: [ActionInput!]!, $user: String, $d: String) {
  writeActions(project: $p, actions: $actions, user: $user, deviceId: $d) { accepted } }"""
T0 = 1_700_000_000_000


def rid(n: int) -> str:
    return f"{n:032x}"


def _action(
    table: str, kind: str, n: int, time: int, data: dict[str, Any] | None, user: str = "alice"
) -> dict[str, Any]:
    return {
        "table": table, "user": user, "action": kind, "recordId": rid(n), "time": time,
        "order": 0, "jsonData": None if data is None else json.dumps(data),
    }  # fmt: skip


async def make_world(server: GatewayServer) -> World:
    """A realistic world: a closed project "clinic" (members alice, bob, dr-carol; alice
    granted dr-carol) with tables notes (keyed, a JSON field), steps (utcTime) and moods
    (REJECT), an open project "open"; actions from alice's phone and tablet and bob's phone,
    a conflict of each kind and a resolved one, named devices, a push registration, syncs with
    WORKING, COMPLETED, FAILED and QUEUED runs, and the cursors reads hand out."""
    admin = server.client(server.token("root", Role.ADMIN))
    alice = server.client(server.token("alice", Role.PATIENT))
    bob = server.client(server.token("bob", Role.PATIENT))
    await admin.data('mutation { createProject(code: "clinic", name: "Clinic") { code } }')
    await admin.data('mutation { createProject(code: "open", name: "Open", open: true) { code } }')
    for project, table, fields, extra in (
        ("clinic", "notes", NOTES_FIELDS, 'keyField: "k"'),
        ("clinic", "steps", STEPS_FIELDS, ""),
        ("clinic", "moods", MOODS_FIELDS, "conflictPolicy: REJECT"),
        ("open", "notes", NOTES_FIELDS, ""),
    ):
        await admin.data(
            f'mutation {{ defineTable(project: "{project}", name: "{table}", fields: {fields} '
            f"{extra}) {{ name }} }}"
        )
    await repair(admin)

    notes = [
        _action(
            "notes", "INSERT", n, T0 + n, {"text": f"note {n}", "k": f"k{n}", "extra": {"n": n}}
        )
        for n in range(1, 7)
    ]
    steps = [
        _action("steps", "INSERT", 100 + n, T0 + n, {"utcTime": T0 + n * 60_000, "value": n * 1.5})
        for n in range(1, 5)
    ]
    moods = [_action("moods", "INSERT", 200, T0, {"localTime": "2024-05-01T08:00:00", "score": 3})]
    await alice.data(WRITE, p="clinic", actions=notes + steps + moods, d="phone")
    await alice.data(
        WRITE,
        p="clinic",
        actions=[
            _action("notes", "UPDATE", 1, T0 + 50, {"done": True}),
            _action("notes", "DELETE", 6, T0 + 51, None),
        ],
        d="phone",
    )
    # The tablet never read the phone's changes: its edits conflict.
    await alice.data(
        WRITE,
        p="clinic",
        actions=[
            _action("notes", "UPDATE", 1, T0 + 60, {"text": "from the tablet"}),
            _action("notes", "UPDATE", 6, T0 + 61, {"text": "after delete"}),
            _action("notes", "UPDATE", 2, T0 + 1, {"text": "an older edit"}),
        ],
        d="tab",
    )
    await bob.data(
        WRITE,
        p="clinic",
        actions=[_action("notes", "INSERT", 300, T0, {"text": "bob's"}, user="bob")],
        d="phone",
    )
    await alice.data(
        WRITE, p="open", actions=[_action("notes", "INSERT", 400, T0, {"text": "open"})], d="phone"
    )

    progress: list[str] = []
    for max_count in (0, 2):
        read = await alice.data(
            'query($n: Int!) { actions(project: "clinic", deviceId: "laptop", maxCount: $n) '
            "{ actions { position } progress { cursor } } }",
            n=max_count,
        )
        progress += [p["cursor"] for p in read["actions"]["progress"]]
    positions = [a["position"] for a in read["actions"]["actions"]]
    for device, name in (("phone", "Alice's phone"), ("tab", "Old tablet"), ("laptop", "Dropbox")):
        await alice.data(
            'mutation($d: String!, $n: String!) { reportDevice(project: "clinic", deviceId: $d, '
            'name: $n, type: "android", version: "1.2.3", pendingUp: 2) { deviceId } }',
            d=device,
            n=name,
        )
    await alice.data(
        'mutation { registerPush(project: "clinic", fcmToken: "fcm-1", deviceId: "phone", '
        'includeTables: ["notes"]) { deviceId } }'
    )
    await alice.data(
        'mutation { recordSyncEvent(project: "clinic", deviceId: "laptop", direction: PUT, '
        'universe: "notes") { time } }'
    )
    await alice.data(
        'mutation($p: [ProgressInput!]!) { acknowledgeProgress(project: "clinic", '
        'deviceId: "laptop", progress: $p) }',
        p=[{"table": "notes", "cursor": progress[0]}],
    )
    found = await alice.data('{ conflicts(project: "clinic") { edges { node { id } } } }')
    conflict_ids = [e["node"]["id"] for e in found["conflicts"]["edges"]]
    await alice.data(
        "mutation($id: Int!) { resolveConflict(id: $id, resolution: KEEP_WINNER) { id } }",
        id=conflict_ids[-1],
    )

    run_ids: list[int] = []
    for name in ("job", "export"):
        sync = await admin.data(
            'mutation($n: String!) { createSync(project: "clinic", name: $n, user: "alice") '
            "{ id } }",
            n=name,
        )
        sync_id = sync["createSync"]["id"]
        for then in ("completeSyncRun", "failSyncRun", None):
            run = await admin.data(
                "mutation($s: Int!) { startSyncRun(syncId: $s, fullSync: true) { id } }", s=sync_id
            )
            run_id = run["startSyncRun"]["id"]
            run_ids.append(run_id)
            if then == "failSyncRun":
                await admin.data(
                    f'mutation {{ failSyncRun(id: {run_id}, errorCode: "E") {{ id }} }}'
                )
            elif then:
                await admin.data(f"mutation {{ {then}(id: {run_id}) {{ id }} }}")
        queued = await admin.data(
            "mutation($s: Int!) { startSyncRun(syncId: $s, "
            'scheduledExecutionTime: "2999-01-01T00:00:00+00:00") { id } }',
            s=sync_id,
        )
        run_ids.append(queued["startSyncRun"]["id"])

    syncs = await admin.data('{ syncs(project: "clinic") { id } }')
    runs = await admin.data('{ projectSyncRuns(project: "clinic", perPage: 100) { data { id } } }')
    records = await alice.data(
        '{ records(project: "clinic", table: "notes", first: 3, includeDeleted: true) '
        "{ edges { cursor node { recordId key position } } } }"
    )
    relay = {"records": [e["cursor"] for e in records["records"]["edges"]]}
    for query in (
        '{ syncHistory(project: "clinic", first: 2) { edges { cursor } } }',
        '{ conflicts(project: "clinic", first: 2) { edges { cursor } } }',
        '{ casesPendingSync(project: "clinic", deviceName: "tab", first: 2) { edges { cursor } } }',
    ):
        page = await alice.data(query)
        [(name, connection)] = page.items()
        relay[name] = [e["cursor"] for e in connection["edges"]]
    nodes = [e["node"] for e in records["records"]["edges"]]
    global_ids = await _global_ids(alice)
    world = World(
        projects=["clinic", "clinic", "clinic", "open"],
        tables=["notes", "steps", "moods"],
        users=["alice", "bob", "dr-carol", "root", "carl"],
        devices=["phone", "tab", "laptop", "Alice's phone", "Old tablet", "Dropbox"],
        record_ids=[rid(n) for n in (1, 2, 3, 6, 100 + 1, 200, 300, 400, 999)],
        records={"notes": [rid(n) for n in (1, 2, 3)], "steps": [rid(101)], "moods": [rid(200)]},
        keys=[n["key"] for n in nodes] + ["k5"],
        positions=positions + [n["position"] for n in nodes],
        sync_ids=[s["id"] for s in syncs["syncs"]],
        run_ids=sorted({*run_ids, *(r["id"] for r in runs["projectSyncRuns"]["data"])}),
        conflict_ids=conflict_ids,
        progress_cursors=progress,
        relay_cursors=relay,
        global_ids=global_ids,
    )
    for caller, who in CALLERS.items():
        world.tokens[caller] = None if who is None else server.token(*who)
    return world


async def _global_ids(alice: GraphQLHttp) -> list[str]:
    """The global ids of alice's objects, one or more of each Node type."""
    found = await alice.data(
        '{ projects { id tables { id } } device(project: "clinic", deviceId: "phone") { id } '
        'records(project: "clinic", table: "notes", first: 2) { edges { node { id } } } '
        'syncHistory(project: "clinic", first: 2) { edges { node { id } } } '
        "me { grants { id } } }"
    )
    pushed = await alice.data(
        'mutation { registerPush(project: "clinic", fcmToken: "fcm-1", deviceId: "phone", '
        'includeTables: ["notes"]) { id } }'
    )
    ids = [found["device"]["id"], pushed["registerPush"]["id"]]
    ids += [i for p in found["projects"] for i in (p["id"], *(t["id"] for t in p["tables"]))]
    for listed in ("records", "syncHistory"):
        ids += [e["node"]["id"] for e in found[listed]["edges"]]
    return ids + [g["id"] for g in found["me"]["grants"]]


async def repair(admin: GraphQLHttp) -> None:
    """Undo what random mutations did to who may use the world (both are idempotent), so that
    the patient's and the professional's operations keep reaching past the access checks."""
    for member in MEMBERS:
        await admin.data(
            'mutation($u: String!) { addProjectMember(project: "clinic", user: $u) { code } }',
            u=member,
        )
    await admin.data(
        'mutation { grantAccess(project: "clinic", grantee: "dr-carol", user: "alice") { user } }'
    )


# ---------------------------------------------------------------------------------------------
# Values
#
# Every strategy takes ``strict``: a strict operation is well formed and names what the world
# has (it reaches the resolvers and the database); a loose one may go wrong anywhere, now and
# then (a value of another type, a null, a broken name, an unknown field, bad syntax).

NASTY_STRINGS = (
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", "é", "日本語", "👩🏽‍⚕️",
    "\n\t", "\\", '"', "'; DROP TABLE actions; --", "%s%n", "{}", "null", "NaN", "-1", "0",
    "9" * 40, "__typename", "<script>", "\u0085", "\ufeff", "\uffff", "\x07", "a" * 255,
    "a" * 256, "$x", "2024-01-01T00:00:00Z", "0" * 32, "f" * 32, "a-b",
)  # fmt: skip
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # refused in any string (BAD_USER_INPUT)
INT_EDGES = (
    0, -1, 1, 2, 100, 101, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53 + 1, 2**63 - 1,
    2**63, -(2**63), -(2**63) - 1, 10**30,
)  # fmt: skip
TIMES = (T0, T0 + 1, T0 + 50, 0, 1, 253_402_300_799_999, 253_402_300_800_000)
GOOD_DATETIMES = (
    "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00", "2024-05-01T08:00:00",
    "2999-01-01T00:00:00Z", "2000-01-01T00:00:00.123456-08:00", "1970-01-01T00:00:00+00:00",
    "2024-02-29T23:59:59+14:00",
)  # fmt: skip
BAD_DATETIMES = (
    "0001-01-01T00:00:00", "0001-01-01T00:00:00+00:00", "0001-01-01T00:30:00+05:00",
    "9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:30:00-05:00", "9999-12-31T23:59:59-14:00",
    "2024-02-30T00:00:00Z", "2024-13-01", "24:00", "now", "", "2024-01-01T00:00:00+25:00",
    "1970-01-01", "+002024-01-01T00:00:00",
)  # fmt: skip
HEX = "0123456789abcdef"
BAD_NAMES = ("nope", "", "a" * 300, "x\x00y")


def cached(factory: Callable[..., _S]) -> Callable[..., _S]:
    """A strategy factory made once per arguments (lists count as tuples): building strategies
    anew for every draw cost hypothesis more time than the gateway took to answer."""
    made: dict[tuple[Any, ...], _S] = {}

    @functools.wraps(factory)
    def wrapper(*args: Any) -> _S:
        key = tuple(tuple(a) if isinstance(a, list) else a for a in args)
        if key not in made:
            made[key] = factory(*args)
        return made[key]

    return wrapper


def chance(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws. Never on 0: hypothesis draws a range's bounds more
    often than the rest and shrinks towards 0, which must stay the ordinary choice."""
    return draw(st.integers(0, one_in - 1)) == one_in // 2


def odd(draw: st.DrawFn, strict: bool, one_in: int) -> bool:
    """A mistake, about once in ``one_in`` draws; never in a strict operation."""
    return not strict and chance(draw, one_in)


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    return st.one_of([strategy for weight, strategy in options for _ in range(weight)])


@cached
def _long_strings() -> st.SearchStrategy[str]:
    # Long ones are rare: graphql-core lexes a string literal at about a microsecond a character.
    sizes = weighted(
        (6, st.sampled_from((256, 300, 5_000))), (1, st.sampled_from((70_000, 300_000)))
    )
    return sizes.map("x".__mul__)


@cached
def free_text(strict: bool) -> st.SearchStrategy[str]:
    """Any text a client might send: nasty, unicode, long (NUL and unpaired surrogates, which
    every string refuses, only when loose)."""
    nasty = st.sampled_from(NASTY_STRINGS)
    if strict:
        nasty = nasty.filter(lambda s: not UNSTORABLE.search(s))
    return weighted(
        (3, nasty),
        (4, st.text(max_size=20)),
        (2, st.text(alphabet=st.characters(codec="utf-8"), max_size=8)),
        (1, _long_strings()),
    )


@cached
def _mangled(values: list[str]) -> st.SearchStrategy[str]:
    """A real value, changed a little: cut, doubled, upper-cased, with a character more."""
    changes = (lambda v: v[:-1], lambda v: v * 2, str.upper, lambda v: v + "=", lambda v: v[::-1])
    return st.tuples(st.sampled_from(values), st.sampled_from(changes)).map(lambda p: p[1](p[0]))


@cached
def pooled(values: list[str], strict: bool) -> st.SearchStrategy[str]:
    """A value the world has; when loose, sometimes one changed a little, or any text."""
    if strict:
        return st.sampled_from(values)
    return weighted(
        (8, st.sampled_from(values)),
        (1, _mangled(values)),
        (1, st.sampled_from(BAD_NAMES)),
        (1, free_text(False)),
    )


@cached
def ints(
    strict: bool, pool: list[int] | None = None, small: tuple[int, int] = (0, 30)
) -> st.SearchStrategy[int]:
    options: list[tuple[int, st.SearchStrategy[Any]]] = [(4, st.integers(*small))]
    if pool:
        options.append((4, st.sampled_from(pool)))
    if not strict:
        options.append((1, st.sampled_from(INT_EDGES)))
    return weighted(*options)


@cached
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from(INT_EDGES),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10),
        st.sampled_from(NASTY_STRINGS).filter(lambda s: not UNSTORABLE.search(s)),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=6), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


NOT_JSON_OBJECTS = (
    '{"text": "a"', "{", "[]", "1", '"s"', "null", "", "nul", '{"text": "a"}{', '{"a":}', "\x00",
    '{"text": "\\ud800"}', '{"text": "\\u0000"}', '{"\\u0000": 1}', '{"text": "a", "text": 1}',
)  # fmt: skip
NON_FINITE = (
    '{"text": NaN}', '{"text": "a", "extra": NaN}', '{"text": "a", "extra": Infinity}',
    '{"text": "a", "extra": {"x": [-Infinity]}}', '{"utcTime": 1, "value": 1e999}',
    '{"utcTime": 1e3, "value": 1}', '{"text": "a", "extra": 1e400}', '{"extra": NaN}',
)  # fmt: skip


@cached
@st.composite
def json_data(draw: st.DrawFn, table: str, strict: bool) -> str | None:
    """jsonData for an action of ``table``: a valid record, or (one in four when loose)
    anything a client might send: unknown fields, wrong types, NaN, deep, huge, not JSON, not
    an object, an id or user that differs."""
    valid: dict[str, Any]
    if table == "steps":
        valid = {"utcTime": draw(ints(strict, list(TIMES))), "value": draw(st.floats(-1e6, 1e6))}
        if draw(st.booleans()):
            valid["localTime"] = draw(st.sampled_from(GOOD_DATETIMES))
    elif table == "moods":
        valid = {"localTime": draw(st.sampled_from(GOOD_DATETIMES)), "score": draw(ints(strict))}
    else:
        valid = {"text": draw(free_text(True)), "k": draw(st.sampled_from(["k1", "k9"]))}
        if draw(st.booleans()):
            valid["extra"] = draw(json_values())
        if draw(st.booleans()):
            valid["done"] = draw(st.booleans())
    if not odd(draw, strict, 4):
        return json.dumps(valid)
    match draw(st.integers(0, 9)):
        case 0:
            return json.dumps(valid | {draw(st.text(max_size=6)): draw(json_values(4))})
        case 1:
            return json.dumps(draw(json_values()))
        case 2:
            return draw(st.sampled_from(NON_FINITE))
        case 3:
            depth = draw(st.sampled_from((30, 31, 32, 33, 100, 5_000)))
            return '{"text": "t", "extra": ' + nested(depth) + "}"
        case 4:
            size = draw(st.sampled_from((1_000, 262_000, 262_144, 300_000)))
            return json.dumps({"text": "x" * size})
        case 5:
            return draw(st.sampled_from(NOT_JSON_OBJECTS))
        case 6:
            return json.dumps(valid | {"id": draw(st.sampled_from([rid(1), "x", 5, None]))})
        case 7:
            return json.dumps(valid | {"user": draw(st.sampled_from(["alice", "bob", 1]))})
        case 8:
            return None
        case _:
            return json.dumps({k: draw(json_values(3)) for k in valid})  # wrong types


@cached
@st.composite
def actions(draw: st.DrawFn, world: World, strict: bool) -> dict[str, Any]:
    """An ActionInput as a device sends one: of alice's tables and records mostly."""
    table = draw(pooled(world.tables, strict))
    kind = draw(st.sampled_from(["INSERT", "UPDATE", "DELETE"]))
    fresh = st.text(HEX, min_size=32, max_size=32)
    record_ids = weighted((2, st.sampled_from(world.record_ids)), (1, fresh))
    if strict:  # a new record, or one of alice's that exists
        record_ids = fresh if kind == "INSERT" else st.sampled_from(world.records[table])
    else:
        bad = ["", "xyz", "0" * 31, "0" * 33, "F" * 32, "00000000-0000-0000-0000-000000000001"]
        record_ids = weighted((6, record_ids), (1, st.sampled_from(bad)))
    action: dict[str, Any] = {
        "table": table,
        "user": "alice" if strict else draw(pooled(world.users, strict)),
        "action": kind,
        "recordId": draw(record_ids),
        "time": draw(ints(strict, list(TIMES), (T0, T0 + 100))),
        "order": draw(ints(strict, None, (0, 3))),
    }
    if kind != "DELETE" or odd(draw, strict, 10):
        action["jsonData"] = draw(json_data(table, strict))
    for name, most in (("source", 32), ("author", 255)):
        if chance(draw, 6):
            text = draw(free_text(strict))
            action[name] = text[:most] if strict else text
    if chance(draw, 6):
        action["baseVersion"] = draw(ints(strict, world.positions))
    if chance(draw, 8):
        action["sampleTime"] = draw(ints(strict, list(TIMES)))
    return action


# ---------------------------------------------------------------------------------------------
# Operations


@dataclass
class Operation:
    """One request as the fuzzer sends it."""

    transport: str  # "http", "get", TRANSPORT_WS, LEGACY_WS
    caller: str
    document: str
    variables: Any = None
    operation_name: str | None = None
    accept: str = "application/json"
    subscription: bool = False
    junk: list[str] = field(default_factory=list)  # raw WebSocket messages, sent first
    fields: tuple[str, ...] = ()  # its root fields, for the statistics

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis prints this, not every field in full

    def __repr__(self) -> str:
        variables = _short(json.dumps(self.variables)) if self.variables is not None else None
        return (
            f"Operation(transport={self.transport!r}, caller={self.caller!r}, "
            f"document={_short(self.document)!r}, variables={variables}, "
            f"operation_name={self.operation_name!r}, accept={self.accept!r}, "
            f"junk={[_short(j) for j in self.junk]!r})"
        )


def _short(text: str, most: int = 1500) -> str:
    return text if len(text) <= most else f"{text[:most]}...<{len(text)} chars>"


_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def literal(value: Any, type_: GraphQLInputType | None) -> str:
    """``value`` written into the document as a GraphQL literal of ``type_``."""
    if value is None:
        return "null"
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        if isinstance(value, list):
            return "[" + ", ".join(literal(v, type_.of_type) for v in value) + "]"
        return literal(value, type_.of_type)  # one item for a list: coerced to a list
    if isinstance(type_, GraphQLEnumType) and isinstance(value, str) and _NAME.match(value):
        return value
    if isinstance(value, dict):
        fields = type_.fields if isinstance(type_, GraphQLInputObjectType) else {}
        parts = []
        for key, item in value.items():
            name = key if _NAME.match(key) else "bad_name"
            parts.append(f"{name}: {literal(item, fields[key].type if key in fields else None)}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, None) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "1e999"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # JSON's string escapes are GraphQL's


STRING_POOLS = {
    "project": "projects", "code": "projects", "table": "tables", "includeTables": "tables",
    "excludeTables": "tables", "user": "users", "grantee": "users", "deviceId": "devices",
    "deviceName": "devices", "recordId": "record_ids", "key": "keys",
    "cursor": "progress_cursors", "ids": "global_ids",
}  # fmt: skip
FIELD_NAMES = ["text", "k", "done", "extra", "utcTime", "localTime", "value", "score"]
SHORT_TEXT = {"fcmToken", "errorCode", "uiTag", "type", "version", "name", "source"}


@cached
def _string_for(world: World, name: str, strict: bool) -> st.SearchStrategy[str]:
    pool = STRING_POOLS.get(name)
    if pool == "users" and strict:  # mostly alice's data, which her actions are of
        return weighted((4, st.just("alice")), (1, st.sampled_from(world.users)))
    if pool is not None:
        return pooled(getattr(world, pool), strict)
    if name == "keyField":
        return pooled(FIELD_NAMES, strict)
    if name == "name":  # of a table, a project, a sync or a device
        return pooled(world.tables + FIELD_NAMES + ["job", "Alice's phone"], strict)
    text = free_text(strict)
    if strict and name in SHORT_TEXT:
        return text.map(lambda t: t[:60] or "x")
    return text


@cached
def _int_for(world: World, name: str, strict: bool) -> st.SearchStrategy[int]:
    if name in ("id", "syncId"):
        return ints(strict, world.sync_ids + world.run_ids + world.conflict_ids)
    if name == "intervalMs":
        return ints(strict, [100, 1000], (0, 200))
    if name == "count":
        return ints(strict, [1, 2, 3], (0, 5))
    if name == "lastHours":
        return ints(strict, [24, 1], (1, 100))
    return ints(strict)


@cached
def _long_for(world: World, name: str, strict: bool) -> st.SearchStrategy[Any]:
    if name == "baseVersion":
        return ints(strict, world.positions)
    base = ints(strict, list(TIMES), (0, 10)) if "ime" in name else ints(strict)
    if strict:
        return base
    # Long takes strings too (JavaScript cannot hold every 64-bit integer).
    return weighted((8, base), (1, st.sampled_from(["123", " 5 ", "1e3", "abc", "", "0x10"])))


@cached
def wrong_value() -> st.SearchStrategy[Any]:
    """A value of another type than asked for."""
    return st.one_of(
        st.integers(-5, 5), st.text(max_size=5), st.booleans(), st.just([]), st.just({}),
        st.floats(allow_nan=False, allow_infinity=False), st.just([1, "a"]), st.just({"a": 1}),
    )  # fmt: skip


@cached
@st.composite
def input_value(
    draw: st.DrawFn,
    world: World,
    type_: GraphQLInputType,
    name: str,
    strict: bool,
    depth: int = 0,
) -> Any:
    """A value for an argument or input field ``name`` of ``type_``."""
    if odd(draw, strict, 40 if depth == 0 else 300):
        return draw(wrong_value())
    if isinstance(type_, GraphQLNonNull):
        if odd(draw, strict, 150):
            return None
        return draw(input_value(world, type_.of_type, name, strict, depth))
    if isinstance(type_, GraphQLList):
        if odd(draw, strict, 20):
            return None
        size = draw(st.integers(0, 3) if name != "actions" else st.integers(0, 6))
        item = input_value(world, type_.of_type, name, strict, depth + 1)
        return [draw(item) for _ in range(size)]
    if isinstance(type_, GraphQLEnumType):
        if odd(draw, strict, 25):
            return draw(st.sampled_from(["NOPE", "insert", "", "null"]))
        return draw(st.sampled_from(list(type_.values)))
    if isinstance(type_, GraphQLInputObjectType):
        if type_.name == "ActionInput" and not odd(draw, strict, 5):
            return draw(actions(world, strict))
        found: dict[str, Any] = {}
        for field_name, field_def in type_.fields.items():
            required = isinstance(field_def.type, GraphQLNonNull)
            if odd(draw, strict, 150) or (not required and draw(st.booleans())):
                continue
            value = input_value(world, field_def.type, field_name, strict, depth + 1)
            found[field_name] = draw(value)
        if odd(draw, strict, 150):
            found["unknownField"] = draw(wrong_value())
        return found
    assert isinstance(type_, GraphQLScalarType), type_
    return draw(_scalar(world, type_.name, name, strict))


@cached
def _scalar(world: World, scalar: str, name: str, strict: bool) -> st.SearchStrategy[Any]:
    match scalar:
        case "String" | "ID":
            if name == "jsonData":
                return json_data("notes", strict)
            return _string_for(world, name, strict)
        case "Int":
            return _int_for(world, name, strict)
        case "Long":
            return _long_for(world, name, strict)
        case "Boolean":
            return st.booleans() if strict else weighted((6, st.booleans()), (1, st.just("true")))
        case "Float":
            return st.floats()
        case "DateTime":
            if strict:
                return st.sampled_from(GOOD_DATETIMES)
            good, bad = st.sampled_from(GOOD_DATETIMES), st.sampled_from(BAD_DATETIMES)
            return weighted((2, good), (2, bad), (1, st.just(T0)))
        case _:
            return json_values()


@cached
@st.composite
def selection(draw: st.DrawFn, type_: GraphQLOutputType, depth: int, strict: bool) -> str:
    """A selection set for ``type_`` (empty for leaves): random fields, some nested, now and
    then an alias, ``__typename``, a fragment, or (loose) a mistake."""
    named = get_named_type(type_)
    if is_leaf_type(named):
        return ""
    if isinstance(named, GraphQLInterfaceType):
        # Its own fields, then (mostly) the fields of one type that implements it.
        implementation = draw(st.sampled_from(SCHEMA.get_possible_types(named)))
        inner = draw(selection(implementation, depth, strict))
        own = " ".join(named.fields)
        if draw(st.integers(0, 3)) == 0:
            return f" {{ {own} }}"
        return f" {{ {own} ... on {implementation.name}{inner} }}"
    assert isinstance(named, GraphQLObjectType), named
    # One draw decides the extras (bands away from the bounds, which hypothesis favours).
    extra = draw(st.integers(0, 999))
    mistake = None if strict or not 500 <= extra < 504 else extra - 500
    if mistake == 0:
        return ""  # an object without a selection: invalid
    names = sorted(named.fields)
    if depth >= 4:  # deep enough: leaves only
        names = [n for n in names if is_leaf_type(get_named_type(named.fields[n].type))]
        if not names:
            return " { __typename }"
    chosen = draw(
        st.lists(st.sampled_from(names), min_size=1, max_size=min(6, len(names)), unique=True)
    )
    parts = [
        f"{name}{draw(selection(named.fields[name].type, depth + 1, strict))}" for name in chosen
    ]
    if 100 <= extra < 150:
        parts[0] = f"a0: {parts[0]}"
    if 200 <= extra < 300:
        parts.append("__typename")
    if 250 <= extra < 350:
        parts = [f"... on {named.name} {{ {' '.join(parts)} }}"]
    if mistake == 1:
        parts.append("unknownField")
    elif mistake == 2:
        parts = [f"... on Query {{ {' '.join(parts)} }}"]  # a fragment on the wrong type
    elif mistake == 3:
        parts.append("__typename { nope }")  # a selection on a leaf
    return " { " + " ".join(parts) + " }"


@st.composite
def root_field(
    draw: st.DrawFn,
    world: World,
    root: GraphQLObjectType,
    alias: str,
    declared: list[str],
    strict: bool,
    roots: list[str],
) -> tuple[str, dict[str, Any]]:
    """One root field with its arguments, written inline or as variables (declared into
    ``declared``); returns the field's text and the variables' values."""
    name = draw(st.sampled_from(sorted(root.fields)))
    definition = root.fields[name]
    roots.append(name)
    arguments: list[str] = []
    variables: dict[str, Any] = {}
    for arg_name, arg in definition.args.items():
        required = isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
        if odd(draw, strict, 50) if required else draw(st.booleans()):
            continue
        value = draw(_argument(world, name, arg_name, arg.type, strict))
        if draw(st.booleans()):
            arguments.append(f"{arg_name}: {literal(value, arg.type)}")
            continue
        variable = f"{alias}_{arg_name}"
        declared_type = str(arg.type)
        if odd(draw, strict, 100):
            declared_type = draw(st.sampled_from(["String", "Int!", "[String]", "Nope", "Long"]))
        declared.append(f"${variable}: {declared_type}")
        arguments.append(f"{arg_name}: ${variable}")
        if not odd(draw, strict, 40):  # sometimes declared but never given
            variables[variable] = value
    if odd(draw, strict, 50):
        arguments.append(f"unknownArg: {literal(draw(wrong_value()), None)}")
    args = f"({', '.join(arguments)})" if arguments else ""
    return f"{alias}: {name}{args}{draw(selection(definition.type, 1, strict))}", variables


@cached
def _argument(
    world: World, field_name: str, name: str, type_: GraphQLInputType, strict: bool
) -> st.SearchStrategy[Any]:
    """An argument's value: ids and cursors of the kind the field takes, mostly."""
    anything = input_value(world, type_, name, strict)
    if name == "id" and get_named_type(type_).name == "ID":  # node's global id
        ids = pooled(world.global_ids, strict)
        return ids if strict else weighted((3, ids), (1, anything))
    if name in ("id", "syncId"):
        ids = st.sampled_from(world.ids_for(field_name))
        return ids if strict else weighted((3, ids), (1, anything))
    if name == "after" and world.relay_cursors.get(field_name):
        return weighted((3, st.sampled_from(world.relay_cursors[field_name])), (1, anything))
    return anything


SYNTAX_JUNK = '{}()[]:$@!"\\#.,= \x00\n…'


@st.composite
def broken(draw: st.DrawFn, document: str) -> str:
    """The document with its syntax broken, or something else entirely."""
    at = draw(st.integers(0, max(len(document) - 1, 0)))
    match draw(st.integers(0, 6)):
        case 0:
            return document[:at]
        case 1:
            return document[:at] + draw(st.sampled_from(SYNTAX_JUNK)) + document[at:]
        case 2:
            return document[:at] + document[at + 1 :]
        case 3:
            return draw(st.text(max_size=40))
        case 4:
            return draw(st.sampled_from(["", " ", "{", "query", "{ me { id } } { me { id } }",
                                         "fragment F on Query { me { id } }", "{ ...F }",
                                         "{" * 3000 + "}" * 3000, "query { " + "me { id } " * 500,
                                         "subscription { heartbeat { seq } }"]))  # fmt: skip
        case 5:
            return document + " " + document  # two anonymous operations
        case _:
            return document.replace("{", "{ __schema { types { name } } ", 1)


WS_JUNK = (
    "not json", "{}", '{"type": "nope"}', '{"type": "subscribe"}', '{"type": "subscribe", "id": 1}',
    '{"type": "connection_init", "payload": "text"}', '{"type": "connection_init"}',
    '{"type": "ping"}', '{"type": "pong"}', '{"type": "complete", "id": "9"}', "[]", "null", "7",
    '{"type": "start", "id": "1", "payload": {}}', '{"type": "stop", "id": "1"}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 1}}', '{"type": "complete", "id": {}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ me { id } }", "variables": []}}',
    '{"type": "subscribe", "id": ["1"], "payload": {"query": "{ me { id } }"}}',
    '{"type": "start", "id": null, "payload": {"query": "{ me { id } }"}}',
    '{"type": "connection_terminate"}', '{"type": "subscribe", "id": "1", "payload": "x"}',
)  # fmt: skip
CALLER_WEIGHTS = ((7, "admin"), (7, "patient"), (2, "professional"), (4, "anonymous"))


@st.composite
def operations(draw: st.DrawFn, world: World) -> Operation:
    """An operation: two in three strict (well formed, aimed at the world), the rest loose."""
    strict = not chance(draw, 3)
    kind = draw(weighted((11, st.just("query")), (7, st.just("mutation")),
                         (2, st.just("subscription"))))  # fmt: skip
    root = {
        "query": SCHEMA.query_type,
        "mutation": SCHEMA.mutation_type,
        "subscription": SCHEMA.subscription_type,
    }[kind]
    assert root is not None
    if kind == "subscription":  # a subscription has one root field
        count = 2 if odd(draw, strict, 30) else 1
    else:
        count = draw(weighted((3, st.just(1)), (1, st.integers(2, 3))))
    declared: list[str] = []
    variables: dict[str, Any] = {}
    fields = []
    roots: list[str] = []
    for number in range(count):
        text, values = draw(root_field(world, root, f"f{number}", declared, strict, roots))
        fields.append(text)
        variables |= values
    name = draw(weighted((2, st.none()), (1, st.just("Fuzz"))))
    head = kind if declared or name or kind != "query" or draw(st.booleans()) else ""
    signature = f"({', '.join(declared)})" if declared else ""
    document = f"{head} {name or ''}{signature} {{ {' '.join(fields)} }}".strip()
    if odd(draw, strict, 8):
        document = draw(broken(document))
    payload: Any = variables or None
    if odd(draw, strict, 20):
        payload = draw(st.sampled_from([[], "text", 1, {"unused": 1}]))

    if kind == "subscription":
        transports = [(15, TRANSPORT_WS), (3, LEGACY_WS)] + ([] if strict else [(1, "http")])
    else:
        transports = [(28, "http"), (7, TRANSPORT_WS)]
        if kind == "query" or not strict:
            transports.append((4, "get"))
        if not strict:
            transports.append((1, LEGACY_WS))  # it runs subscriptions only
    transport = draw(weighted(*((w, st.just(t)) for w, t in transports)))
    junk: list[str] = []
    if transport in (TRANSPORT_WS, LEGACY_WS) and odd(draw, strict, 8):
        junk = draw(st.lists(st.sampled_from(WS_JUNK), min_size=1, max_size=3))
    return Operation(
        transport=transport,
        caller=draw(weighted(*((w, st.just(c)) for w, c in CALLER_WEIGHTS))),
        document=document,
        variables=payload,
        operation_name="Other" if odd(draw, strict, 30) else name,
        accept=draw(
            weighted(
                (3, st.just("application/json")), (1, st.just("application/graphql-response+json"))
            )
        ),
        subscription=kind == "subscription",
        junk=junk,
        fields=tuple(roots),
    )


# ---------------------------------------------------------------------------------------------
# Sending, and judging the answers


class ErrorLog(logging.Handler):
    """Errors the server logged (an unexpected exception masked, a failure in the background):
    each one is a bug the client may never have seen."""

    LOGGERS = ("gateway", "uvicorn.error", "strawberry")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        found = [
            self.format(r) if r.exc_info else f"{r.name}: {r.getMessage()}" for r in self.records
        ]
        self.records.clear()
        return found

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[ErrorLog]:
        handler = cls()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        for name in cls.LOGGERS:
            logging.getLogger(name).addHandler(handler)
        try:
            yield handler
        finally:
            for name in cls.LOGGERS:
                logging.getLogger(name).removeHandler(handler)


class Fuzzer:
    """Sends operations to a running gateway and raises ``Broken`` at the first misbehaviour."""

    def __init__(self, server: GatewayServer, world: World, errors: ErrorLog) -> None:
        self.server = server
        self.world = world
        self.errors = errors
        self.http = httpx.AsyncClient(timeout=HANG_SECONDS, verify=_TLS)
        self.sent: Counter[str] = Counter()  # by transport and caller
        self.outcomes: Counter[str] = Counter()  # per operation: "ok", or its first error code
        self.messages: Counter[str] = Counter()  # errors by code and message
        self._outcome: str | None = None
        self.seconds: Counter[str] = Counter()  # time spent, by transport and kind
        self.slowest: list[tuple[float, str]] = []  # the ten slowest operations
        self.by_field: dict[str, Counter[str]] = {}  # outcomes by root field

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, op: Operation) -> None:
        self.sent[f"{op.transport} as {op.caller}"] += 1
        self._outcome = None
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(HANG_SECONDS * 2):
                if op.transport in ("http", "get"):
                    await self._http(op)
                else:
                    await self._websocket(op)
        except TimeoutError as exc:
            raise Broken(f"no answer within {HANG_SECONDS} s (a hang): {op!r}") from exc
        except httpx.TransportError as exc:
            raise Broken(f"the request failed ({exc!r}): {op!r}") from exc
        await self.check_alive(op)
        outcome = self._outcome or "no result (connection closed or refused)"
        self.outcomes[outcome] += 1
        for name in op.fields:
            self.by_field.setdefault(name, Counter())[outcome] += 1
        kind = "subscription" if op.subscription else "operation"
        took = asyncio.get_running_loop().time() - started
        self.seconds[f"{op.transport} {kind}"] += took
        self.slowest = sorted([*self.slowest, (took, _short(repr(op), 300))], reverse=True)[:10]

    async def check_alive(self, op: Operation | None = None) -> None:
        try:
            health = await self.http.get(f"{self.server.base_url}/healthz", timeout=5)
        except httpx.TransportError as exc:
            raise Broken(f"/healthz does not answer (a crash?) after {op!r}") from exc
        if health.status_code != 200:
            raise Broken(f"/healthz answered {health.status_code} after {op!r}")
        logged = self.errors.take()
        if logged:
            raise Broken(f"the server logged errors after {op!r}:\n" + "\n".join(logged))

    # HTTP

    async def _http(self, op: Operation) -> None:
        headers = {"Accept": op.accept}
        token = self.world.tokens[op.caller]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        transport = op.transport
        if transport == "get" and len(op.document) + len(json.dumps(op.variables)) > 4000:
            transport = "http"  # too long for a URL (httpx refuses it before sending)
        if transport == "get":
            params = {"query": op.document}
            if op.variables is not None:
                params["variables"] = json.dumps(op.variables)
            if op.operation_name is not None:
                params["operationName"] = op.operation_name
            response = await self.http.get(self.server.url, params=params, headers=headers)
        else:
            body: dict[str, Any] = {"query": op.document, "variables": op.variables}
            if op.operation_name is not None:
                body["operationName"] = op.operation_name
            headers["Content-Type"] = "application/json"
            # json.dumps escapes lone surrogates ("\ud800"), as JavaScript clients send them
            response = await self.http.post(
                self.server.url, content=json.dumps(body), headers=headers
            )
        where = f"HTTP {response.status_code} for {op!r}: {_short(response.text, 3000)}"
        if response.status_code >= 500:
            raise Broken(where)
        try:
            answer = response.json()
        except ValueError as exc:
            raise Broken(f"not JSON: {where}") from exc
        if not isinstance(answer, dict) or ("data" not in answer and "errors" not in answer):
            raise Broken(f"not a GraphQL response: {where}")
        self._judge(answer.get("errors"), where)

    def _judge(self, errors: Any, where: str, count: bool = True) -> None:
        if errors is None:
            self._outcome = self._outcome or "ok"
            return
        if not isinstance(errors, list) or not errors:
            raise Broken(f"errors is not a non-empty list: {where}")
        for error in errors:
            code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
            if not isinstance(code, str):
                raise Broken(f"an error without extensions.code: {where}")
            if code == "INTERNAL_SERVER_ERROR":
                raise Broken(f"INTERNAL_SERVER_ERROR: {where}")
            if not count:
                continue
            if self._outcome in (None, "ok"):
                self._outcome = code
            self.messages[f"{code}: {re.sub(r'[0-9]+', 'N', str(error.get('message')))[:70]}"] += 1

    # WebSockets

    async def _websocket(self, op: Operation) -> None:
        token = self.world.tokens[op.caller]
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        legacy = op.transport == LEGACY_WS
        async with websockets.connect(
            self.server.ws_url, subprotocols=[op.transport], max_queue=None, open_timeout=5
        ) as ws:
            try:
                for junk in op.junk:
                    await ws.send(junk)
                await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                ack = await self._receive(ws, op, HANG_SECONDS)
                if ack is None:
                    raise Broken(f"no connection_ack in time: {op!r}")
                if ack.get("type") == "connection_error":  # legacy: refused (no token)
                    return
                start = "start" if legacy else "subscribe"
                request: dict[str, Any] = {"query": op.document, "variables": op.variables}
                if op.operation_name is not None:
                    request["operationName"] = op.operation_name
                await ws.send(json.dumps({"type": start, "id": "op", "payload": request}))
                await self._results(ws, op, legacy)
                # Still answering: stop the operation, then a ping (legacy: one more query).
                await ws.send(json.dumps({"type": "stop" if legacy else "complete", "id": "op"}))
                await self._still_answers(ws, op, legacy)
            except ConnectionClosed as closed:
                self._judge_close(closed, op)

    async def _receive(self, ws: Any, op: Operation, seconds: float) -> dict[str, Any] | None:
        """The next message that is not a keep-alive, or None when none came in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(deadline - loop.time(), 0))
            except TimeoutError:
                return None
            try:
                message = json.loads(raw)
            except ValueError as exc:
                raise Broken(f"a WebSocket message that is not JSON ({raw!r}): {op!r}") from exc
            if not isinstance(message, dict):
                raise Broken(f"a WebSocket message that is not an object ({raw!r}): {op!r}")
            if message.get("type") not in ("ka", "ping", "pong"):
                return message

    async def _results(self, ws: Any, op: Operation, legacy: bool) -> None:
        """Read the operation's results: a query or mutation until it completes (a hang if it
        does not in time), a subscription until it ends, goes quiet or said enough."""
        got = 0
        while True:
            if op.subscription:
                wait = SUBSCRIPTION_IDLE_SECONDS if got else SUBSCRIPTION_IDLE_SECONDS * 2
            else:
                wait = HANG_SECONDS
            message = await self._receive(ws, op, wait)
            if message is None:
                if not op.subscription:
                    raise Broken(f"no result within {HANG_SECONDS} s (a hang): {op!r}")
                return
            kind = message.get("type")
            where = f"WebSocket {message!r} for {op!r}"
            if kind in ("next", "data"):
                self._judge((message.get("payload") or {}).get("errors"), where)
                got += 1
            elif kind == "error":
                errors = message.get("payload")
                self._judge(errors if isinstance(errors, list) else [errors], where)
                return
            elif kind == "complete":
                if got == 0 and not op.subscription:
                    raise Broken(f"completed without a result: {where}")
                return
            else:
                raise Broken(f"an unexpected message: {where}")
            if got >= SUBSCRIPTION_MESSAGES:
                return

    async def _still_answers(self, ws: Any, op: Operation, legacy: bool) -> None:
        if legacy:
            query = {"query": "{ __typename }"}
            await ws.send(json.dumps({"type": "start", "id": "check", "payload": query}))
        else:
            await ws.send(json.dumps({"type": "ping"}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANG_SECONDS
        while loop.time() < deadline:
            raw = await asyncio.wait_for(ws.recv(), max(deadline - loop.time(), 0))
            message = json.loads(raw)
            if legacy and message.get("id") == "check":  # "queries are not allowed"
                if message.get("type") == "error":
                    self._judge([message.get("payload")], f"{message!r} for {op!r}", count=False)
                    return
                raise Broken(f"an unexpected answer to a query: {message!r} after {op!r}")
            if not legacy and message.get("type") == "pong":
                return
            if message.get("type") in ("next", "data") and message.get("id") == "op":
                continue  # a subscription's message sent before it was stopped
        raise Broken(f"the connection stopped answering after {op!r}")

    def _judge_close(self, closed: ConnectionClosed, op: Operation) -> None:
        code = closed.rcvd.code if closed.rcvd is not None else 1006
        self._outcome = self._outcome or f"closed {code}"
        if code in FAILED_CLOSE_CODES:
            raise Broken(f"WebSocket closed with {code} ({closed!r}): {op!r}")
        refused = {4400, 4401, 4403, 4408, 4409, 4429, 1000, 1002, 1003, 1007, 1008, 1009}
        if code not in refused:
            raise Broken(f"WebSocket closed with an unexpected {code} ({closed!r}): {op!r}")
        init_in_junk = any("connection_init" in junk for junk in op.junk)  # without a token
        if code == 4403 and op.caller != "anonymous" and not init_in_junk:
            raise Broken(f"a signed-in caller's WebSocket was refused (4403): {op!r}")
