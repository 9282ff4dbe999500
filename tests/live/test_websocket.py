"""WebSocket subscriptions: both protocols, authenticated from the connection_init payload."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
import websockets
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from gateway.graphql.view import close_reason
from tests.support import GatewayServer, settings_for

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
HEARTBEAT = gql("subscription { heartbeat(intervalMs: 100, count: 2) { seq user serverTime } }")


def transport(server: GatewayServer, protocol: str, payload: dict[str, Any]) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=server.ws_url, init_payload=payload, subprotocols=[protocol], connect_timeout=10
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_authenticated_subscription_streams(server: GatewayServer, protocol: str) -> None:
    token = server.token("alice", Role.PATIENT)
    payload = {"Authorization": f"Bearer {token}"}
    async with Client(transport=transport(server, protocol, payload)) as session:
        beats = [beat async for beat in session.subscribe(HEARTBEAT)]
    assert [b["heartbeat"]["seq"] for b in beats] == [1, 2]
    assert {b["heartbeat"]["user"] for b in beats} == {"alice"}
    assert beats[0]["heartbeat"]["serverTime"] <= beats[1]["heartbeat"]["serverTime"]


def refused_payloads(server: GatewayServer) -> dict[str, dict[str, Any]]:
    expired = server.token("a", Role.ADMIN, timedelta(seconds=-60))
    return {
        "no token": {},
        "other keys only": {"something": "else"},
        "expired token": {"Authorization": f"Bearer {expired}"},
        "garbage token": {"Authorization": "Bearer not.a.jwt"},
    }


CASES = ["no token", "other keys only", "expired token", "garbage token"]
# What a client can show when its connection is refused (the close reason, or the legacy
# protocol's connection_error message).
REASONS = {
    "no token": 'authentication required: send {"Authorization": "Bearer <token>"} in '
    "connection_init",
    "other keys only": 'authentication required: send {"Authorization": "Bearer <token>"} in '
    "connection_init",
    "expired token": "token expired",
    "garbage token": "invalid token: Invalid header padding",
}


@pytest.mark.parametrize("case", CASES)
async def test_graphql_transport_ws_handshake_without_a_valid_token_closes_4403(
    server: GatewayServer, case: str
) -> None:
    init = {"type": "connection_init", "payload": refused_payloads(server)[case]}
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps(init))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, REASONS[case])


@pytest.mark.parametrize("case", CASES)
async def test_legacy_graphql_ws_handshake_without_a_valid_token_is_a_connection_error(
    server: GatewayServer, case: str
) -> None:
    init = {"type": "connection_init", "payload": refused_payloads(server)[case]}
    async with websockets.connect(server.ws_url, subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps(init))
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert reply["type"] == "connection_error"
        assert reply["payload"] == {"code": "UNAUTHENTICATED", "message": REASONS[case]}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, REASONS[case])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_bad_subscription_arguments_are_bad_user_input(
    server: GatewayServer, protocol: str
) -> None:
    payload = {"Authorization": f"Bearer {server.token('alice', Role.PATIENT)}"}
    async with Client(transport=transport(server, protocol, payload)) as session:
        with pytest.raises(TransportQueryError) as caught:
            async for _ in session.subscribe(
                gql("subscription { heartbeat(intervalMs: 5) { seq } }")
            ):
                pytest.fail("no beat for a refused subscription")
    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("compression", [False, True])
async def test_compression_is_negotiated_only_when_enabled(
    migrated_url: str, compression: bool
) -> None:
    """permessage-deflate costs every connection a compressor: off unless the setting asks."""
    settings = settings_for(migrated_url, ws_compression=compression)
    with GatewayServer.running(settings) as server:
        # The client offers permessage-deflate (websockets does by default).
        async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    assert ("permessage-deflate" in extensions) is compression


async def test_a_token_expiring_mid_stream_ends_each_operation_then_closes_4403(
    server: GatewayServer,
) -> None:
    """The connection is no use once its token expired: each operation ends with an error
    saying to reconnect, then the close says why (graphql-ws clients reconnect after a 4403,
    asking their connectionParams function for a fresh token)."""
    token = server.token("alice", Role.PATIENT, timedelta(seconds=2))
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    subscribe = {
        "id": "beats",
        "type": "subscribe",
        "payload": {"query": "subscription { heartbeat(intervalMs: 200) { seq } }"},
    }
    messages: list[dict[str, Any]] = []
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps(subscribe))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    messages.append(json.loads(await ws.recv()))
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4403,
        "token expired: reconnect with a new token",
    )
    *beats, ending = [m for m in messages if m["type"] != "complete"]
    assert beats and all(b["payload"]["data"]["heartbeat"] for b in beats)
    # The stream's own guard or the connection's close, whichever ran first, ended it.
    errors = ending["payload"] if ending["type"] == "error" else ending["payload"]["errors"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
        ("token expired: reconnect with a new token", "UNAUTHENTICATED")
    ]


def test_unit_a_long_refusal_is_cut_to_fit_a_close_reason() -> None:
    """A close reason over 123 bytes cannot be sent at all (the client would see none)."""
    reason = close_reason({"message": "invalid token: " + "é" * 100})
    assert len(reason.encode()) <= 123
    assert reason.startswith("invalid token: é") and reason.endswith("...")
    assert close_reason({"message": "token expired"}) == "token expired"
