"""Lists of plain objects completed in one loop (gateway/graphql/execution.py) answer exactly as
graphql-core's own completion does: hypothesis generates selections over the hot lists (aliases,
repeated fields, ``__typename``, inline and named fragments, ``@skip``/``@include`` with
variables, nested objects, nulls) and each is asked with the fast path on and off, on both
databases; the answers must be byte-identical."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from graphql import GraphQLObjectType, GraphQLOutputType, get_named_type, is_leaf_type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth.principal import Role
from gateway.graphql import execution
from gateway.graphql.schema import schema
from tests.api.test_access_table import make_world
from tests.support import GatewayServer, GraphQLHttp, settings_for

ROOTS = {  # root field with its arguments -> the type of what it returns
    'actions(project: "clinic", user: "alice", maxCount: 50)': "ActionBatch",
    'records(project: "clinic", table: "notes", user: "alice", first: 50, includeDeleted: true)': (
        "RecordConnection"
    ),
    'devices(project: "clinic")': "Device",
    'syncs(project: "clinic")': "Sync",
    "projects": "Project",
    "syncRuns(syncId: $sync)": "SyncRunPage",
}
# A read's cursor holds the read horizon, which any transaction on the PostgreSQL server moves
# (other databases' too): it may differ between two reads, whichever path completes them.
_HORIZON = re.compile(r'("cursor[AB]?": )"[^"]*"')
DIRECTIVES = ("", "", "", " @include(if: $yes)", " @skip(if: $no)", " @skip(if: $yes)")


@st.composite
def selections(draw: Any, type_name: str, fragments: list[str], depth: int = 0) -> str:
    """A selection set over ``type_name``: fields without arguments, some aliased, repeated,
    under directives or fragments."""
    object_type = schema._schema.type_map[type_name]
    assert isinstance(object_type, GraphQLObjectType)
    names = sorted(n for n, f in object_type.fields.items() if not f.args)
    chosen = draw(st.lists(st.sampled_from([*names, "__typename"]), min_size=1, max_size=8))
    parts = []
    for name in chosen:
        alias = draw(st.sampled_from(["", "", f"{name}A: ", f"{name}B: "]))  # never a conflict
        selection = f"{alias}{name}{draw(st.sampled_from(DIRECTIVES))}"
        if name != "__typename":
            inner = _object_of(object_type.fields[name].type)
            if inner is not None:
                if depth >= 2:
                    continue
                selection += " { " + draw(selections(inner, fragments, depth + 1)) + " }"
        wrap = draw(st.sampled_from(["plain", "plain", "inline", "named"]))
        if wrap == "inline":
            selection = f"... on {type_name} {{ {selection} }}"
        elif wrap == "named":
            fragments.append(f"fragment F{len(fragments)} on {type_name} {{ {selection} }}")
            selection = f"...F{len(fragments) - 1}"
        parts.append(selection)
    return " ".join(parts) or "__typename"


def _object_of(field_type: GraphQLOutputType) -> str | None:
    """The object type a field returns (through lists and non-null), None for a leaf."""
    named = get_named_type(field_type)
    return None if is_leaf_type(named) else named.name


@st.composite
def documents(draw: Any) -> str:
    fragments: list[str] = []
    root = draw(st.sampled_from(sorted(ROOTS)))
    body = draw(selections(ROOTS[root], fragments))
    sync = ", $sync: Int!" if "$sync" in root else ""
    return (
        f"query($yes: Boolean!, $no: Boolean!{sync}) {{ "
        "t: __typename @include(if: $yes) @skip(if: $no) "  # every variable is used
        f"{root} {{ {body} }} }} " + " ".join(fragments)
    )


async def add_variety(admin: GraphQLHttp) -> None:
    """Actions with and without author, sample time and data (a DELETE), from a device and
    not, so that the lists hold nulls where their types allow them."""
    write = (
        'mutation($a: [ActionInput!]!, $d: String) { writeActions(project: "clinic", '
        'user: "alice", actions: $a, deviceId: $d) { accepted } }'
    )
    actions = [
        {"table": "notes", "user": "alice", "action": "INSERT", "recordId": f"{n:032x}",
         "time": 10 + n, "order": 0, "author": "dr-carol" if n % 2 else None,
         "jsonData": json.dumps({"text": f"note {n}", "k": f"key{n}"})}
        for n in range(1, 6)
    ]  # fmt: skip
    await admin.data(write, a=actions, d="phone")
    delete = {"table": "notes", "user": "alice", "action": "DELETE", "recordId": f"{1:032x}",
              "time": 20, "order": 0}  # fmt: skip
    await admin.data(write, a=[delete], d=None)


def test_fast_and_graphql_core_lists_answer_alike(migrated_url: str) -> None:
    # Generated selections repeat and alias fields freely: the operation limits are not the point.
    relaxed = settings_for(
        migrated_url, rate_limit_per_second=0, max_query_aliases=10_000, max_query_cost=10**9
    )
    with GatewayServer.running(relaxed) as server:
        runner = asyncio.Runner()
        try:
            world = runner.run(make_world(server))
            admin = server.client(server.token("root", Role.ADMIN))
            runner.run(add_variety(admin))
            flags = {"yes": True, "no": False}

            async def both(document: str) -> tuple[str, str]:
                answers = []
                for enabled in (False, True):
                    execution.ENABLED = enabled
                    variables = flags | ({"sync": world.alice_sync} if "$sync" in document else {})
                    answer = json.dumps(await admin.execute(document, **variables))
                    answers.append(_HORIZON.sub(r'\1"<cursor>"', answer))
                return answers[0], answers[1]

            @settings(
                max_examples=150,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(documents())
            def alike(document: str) -> None:
                core, fast = runner.run(both(document))
                assert "errors" not in json.loads(core), (document, core)
                assert fast == core, (document, core, fast)

            alike()
        finally:
            execution.ENABLED = True
            runner.close()
