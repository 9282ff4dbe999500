"""graphql-transport-ws close codes, spoken raw over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from tests.support import GatewayServer, settings_for

PROTOCOL = "graphql-transport-ws"
HEARTBEAT = "subscription { heartbeat(intervalMs: 5000) { seq } }"


@pytest.fixture
def server(migrated_url: str) -> AsyncIterator[GatewayServer]:
    with GatewayServer.running(
        settings_for(migrated_url, ws_connection_init_timeout_seconds=0.5)
    ) as running:
        yield running  # type: ignore[misc]


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):  # a connection that keeps sending is not closed either
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def acknowledged(server: GatewayServer, ws: ClientConnection) -> None:
    token = server.token("alice", Role.PATIENT)
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"


async def test_4400_for_a_message_that_is_not_the_protocol(server: GatewayServer) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"type": "nonsense"})
        assert (await closed_with(ws))[0] == 4400


@pytest.mark.parametrize("message", ["[]", "null", '"connection_init"', "1", "[{}]"])
async def test_4400_for_json_that_is_not_an_object(server: GatewayServer, message: str) -> None:
    """Found by the fuzzer: Strawberry indexed these as objects, raised TypeError and dropped
    the connection without a close code (1006), logging an ASGI exception."""
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await acknowledged(server, ws)
        await ws.send(message)
        assert await closed_with(ws) == (4400, "WebSocket message must be a JSON object")


async def test_the_legacy_protocol_ignores_json_that_is_not_an_object(
    server: GatewayServer,
) -> None:
    """graphql-ws ignores what it cannot parse: the connection goes on answering. (Found by the
    fuzzer: an object without a "type" raised KeyError and dropped the connection.)"""
    async with websockets.connect(server.ws_url, subprotocols=["graphql-ws"]) as ws:
        token = server.token("alice", Role.PATIENT)
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        for message in ("[]", "null", '"start"', "1", "{}", '{"type": 1}', json.dumps(init)):
            await ws.send(message)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        beat = "subscription { heartbeat(count: 1, intervalMs: 100) { user } }"
        await send(ws, {"type": "start", "id": "1", "payload": {"query": beat}})
        while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "ka":
            pass
        assert message["payload"] == {"data": {"heartbeat": {"user": "alice"}}}


MALFORMED = {  # subscribe messages as a hostile client sends them, and the reason for 4400
    "variables that are not an object": (
        {"id": "1", "payload": {"query": HEARTBEAT, "variables": 1}},
        "'variables' must be an object",
    ),
    "variables that are a list": (
        {"id": "1", "payload": {"query": "{ me { id } }", "variables": []}},
        "'variables' must be an object",
    ),
    "a query that is not a string": (
        {"id": "1", "payload": {"query": 1}},
        "'query' must be a string",
    ),
    "an operationName that is not a string": (
        {"id": "1", "payload": {"query": HEARTBEAT, "operationName": ["x"]}},
        "'operationName' must be a string",
    ),
    "extensions that are not an object": (
        {"id": "1", "payload": {"query": HEARTBEAT, "extensions": "x"}},
        "'extensions' must be an object",
    ),
    "a payload that is not an object": (
        {"id": "1", "payload": "x"},
        "the payload must be an object",
    ),
    "an id that is not a string": (
        {"id": ["1"], "payload": {"query": HEARTBEAT}},
        "a subscribe message needs a string 'id'",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_4400_for_a_malformed_subscribe_message(server: GatewayServer, case: str) -> None:
    """Found by the fuzzer: Strawberry handed these to graphql-core as they were, which raised
    (AttributeError for variables that are not an object: an INTERNAL_SERVER_ERROR; TypeError
    for a payload or an id it could not index or hash: a dropped connection)."""
    message, reason = MALFORMED[case]
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await acknowledged(server, ws)
        await send(ws, {"type": "subscribe", **message})
        assert await closed_with(ws) == (4400, reason)


async def test_the_legacy_protocol_answers_a_malformed_start_with_an_error(
    server: GatewayServer,
) -> None:
    async with websockets.connect(server.ws_url, subprotocols=["graphql-ws"]) as ws:
        token = server.token("alice", Role.PATIENT)
        await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await send(ws, {"type": "start", "id": ["x"], "payload": {"query": HEARTBEAT}})  # ignored
        await send(
            ws, {"type": "start", "id": "1", "payload": {"query": HEARTBEAT, "variables": 1}}
        )
        while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "ka":
            pass
        assert message == {
            "type": "error",
            "id": "1",
            "payload": {
                "message": "'variables' must be an object",
                "extensions": {"code": "BAD_USER_INPUT"},
            },
        }


async def test_4401_for_subscribing_before_the_connection_is_acknowledged(
    server: GatewayServer,
) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await send(ws, {"type": "subscribe", "id": "1", "payload": {"query": HEARTBEAT}})
        assert await closed_with(ws) == (4401, "Unauthorized")


async def test_4408_when_no_connection_init_arrives_in_time(server: GatewayServer) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        assert await closed_with(ws) == (4408, "Connection initialisation timeout")


async def test_4409_for_a_second_subscription_with_the_same_id(server: GatewayServer) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await acknowledged(server, ws)
        subscribe = {"type": "subscribe", "id": "same", "payload": {"query": HEARTBEAT}}
        await send(ws, subscribe)
        await send(ws, subscribe)
        assert await closed_with(ws) == (4409, "Subscriber for same already exists")


async def test_4429_for_a_second_connection_init(server: GatewayServer) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await acknowledged(server, ws)
        await send(ws, {"type": "connection_init", "payload": {}})
        assert await closed_with(ws) == (4429, "Too many initialisation requests")
