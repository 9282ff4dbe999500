"""Operation limits: a bomb is refused with LIMIT_EXCEEDED naming the limit, before it runs, over
HTTP and WebSockets, for anonymous and signed-in callers; ordinary operations pass."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from graphql import get_introspection_query

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, error_code, settings_for

FIELDS = "table user action recordId jsonData sampleTime time order source author deviceId"


def limit(error: dict[str, Any]) -> str:
    assert error_code(error) == "LIMIT_EXCEEDED", error
    return str(error["extensions"]["limit"])


def aliases(field: str, n: int) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


@pytest.fixture
def alice(server: GatewayServer) -> GraphQLHttp:
    return server.client(server.token("alice", Role.PATIENT))


async def test_a_token_bomb_is_refused_for_anyone(
    server: GatewayServer, alice: GraphQLHttp
) -> None:
    bomb = aliases("__typename", 20_000)
    for client in (server.client(), alice):
        assert limit(await client.error(bomb)) == "tokens"


async def test_introspection_once_but_not_over_and_over(
    server: GatewayServer, alice: GraphQLHttp
) -> None:
    anonymous = server.client()
    assert "__schema" in await anonymous.data(get_introspection_query(descriptions=True))
    many = aliases("__schema { queryType { name } }", 200)
    assert limit(await anonymous.error(many)) == "aliases"
    # three at once cost more than an anonymous caller's budget, not a signed-in one's
    three = aliases("__schema { queryType { name } }", 3)
    assert limit(await anonymous.error(three)) == "cost"
    assert len(await alice.data(three)) == 3


async def test_depth_counts_nested_selections(alice: GraphQLHttp) -> None:
    deep = '{ __type(name: "Query") { ' + "ofType { " * 16 + "name" + " }" * 16 + " } }"
    error = await alice.error(deep)
    assert limit(error) == "depth"
    assert error["extensions"]["max"] == 15
    ok = '{ __type(name: "Query") { ' + "ofType { " * 8 + "name" + " }" * 8 + " } }"
    assert (await alice.data(ok))["__type"]["ofType"] is None


async def test_lists_count_at_their_size_and_variables_at_their_most(migrated_url: str) -> None:
    # A budget of 30,000: a full page of 1,000 actions of 11 fields costs about 11,000.
    with GatewayServer.running(settings_for(migrated_url, max_query_cost=30_000)) as server:
        alice = server.client(server.token("alice", Role.PATIENT))
        one = f'actions(project: "p", maxCount: $n) {{ actions {{ {FIELDS} }} }}'
        pull = f"query($n: Int!) {{ a: {one} b: {one} c: {one} }}"
        # a variable may ask for a full page: three of them are too much, whatever $n is
        assert limit(await alice.error(pull, n=10)) == "cost"
        small = pull.replace("query($n: Int!) ", "").replace("$n", "100")
        body = await alice.execute(small)  # runs: the project does not exist
        assert {error_code(e) for e in body["errors"]} == {"NOT_FOUND"}
        # anonymous callers are told they need a token: nothing but introspection runs for them
        one = '{ actions(project: "p") { actions { recordId } } }'
        assert error_code(await server.client().error(one)) == "UNAUTHENTICATED"
        assert error_code(await alice.error(one)) == "NOT_FOUND"


async def test_a_fragment_bomb_is_measured_without_expanding_it(alice: GraphQLHttp) -> None:
    """Each fragment spreads the next one twice: 2^40 fields once expanded."""
    fragments = [f"fragment F{i} on Me {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    fragments.append("fragment F40 on Me { id }")
    bomb = "query { me { ...F0 } } " + " ".join(fragments)
    assert limit(await alice.error(bomb)) == "cost"


async def test_an_anonymous_fragment_bomb_at_the_root_is_refused(server: GatewayServer) -> None:
    """Fragments of the root type spreading each other: it hung the gateway when only
    graphql-core's validation, and the anonymous cost's walk, looked at it unexpanded."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    fragments.append("fragment F40 on Query { __typename }")
    bomb = "query { ...F0 } " + " ".join(fragments)
    assert limit(await server.client().error(bomb)) == "rootFields"


async def test_root_fields_and_aliases_are_settings(migrated_url: str) -> None:
    settings = settings_for(migrated_url, max_root_fields=3, max_query_aliases=1)
    with GatewayServer.running(settings) as server:
        alice = server.client(server.token("alice", Role.PATIENT))
        assert limit(await alice.error("{ a: me { id } b: me { id } }")) == "aliases"
        four = "{ me { id } projects { code } __typename ...on Query { me { role } } x: me { id } }"
        errors = (await alice.execute(four))["errors"]
        assert {limit(e) for e in errors} == {"rootFields"}
        assert (await alice.data("{ me { id } projects { code } a: __typename }"))["a"] == "Query"


async def ws_first(server: GatewayServer, query: str) -> dict[str, Any]:
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_over_websockets_a_bomb_is_a_coded_error_not_a_closed_connection(
    server: GatewayServer,
) -> None:
    message = await ws_first(server, "subscription " + aliases("heartbeat { seq }", 12_000))
    assert message["type"] == "error"
    assert limit(message["payload"][0]) == "tokens"
    two = f'a: heartbeat {{ seq }} databaseActions(project: "p") {{ actions {{ {FIELDS} }} }}'
    message = await ws_first(server, f"subscription {{ {two} }}")
    assert message["type"] == "error"  # two root fields of a subscription: invalid, coded
    assert error_code(message["payload"][0]) == "BAD_USER_INPUT"
