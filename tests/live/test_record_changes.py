"""recordChanges, RxDB's pull stream, spoken raw over graphql-transport-ws on both databases:
RxDB's auth shape, the resync first, the changed documents with a checkpoint pulls continue
from, and an error that comes as a message's error with data, never as a message without."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from tests.support import GatewayServer
from tests.support.live import make_project, write_notes

PROTOCOL = "graphql-transport-ws"
CHANGES = """subscription { recordChanges(project: "live", table: "notes") {
  documents checkpoint { cursor } resync } }"""
PULL = """query($checkpoint: RecordCheckpointInput) { pullRecords(project: "live", table: "notes",
  checkpoint: $checkpoint, limit: 10) { documents checkpoint { cursor } } }"""


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def subscribed(ws: ClientConnection, token: str) -> None:
    """RxDB's connection_init: its HTTP headers under "headers"."""
    headers = {"Authorization": f"Bearer {token}"}
    await send(ws, {"type": "connection_init", "payload": {"headers": headers}})
    assert (await receive(ws))["type"] == "connection_ack"
    await send(ws, {"type": "subscribe", "id": "1", "payload": {"query": CHANGES}})


async def test_changes_stream_after_a_resync(server: GatewayServer) -> None:
    await make_project(server)
    token = server.token("alice", Role.PATIENT)
    alice = server.client(token)
    await write_notes(alice, range(2))
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await subscribed(ws, token)
        first = (await receive(ws))["payload"]["data"]["recordChanges"]
        assert first["resync"] is True and first["documents"] == []
        # What RxDB then does: pull from its own checkpoint (here: from the start).
        pulled = (await alice.data(PULL))["pullRecords"]
        assert len(pulled["documents"]) == 2

        await write_notes(alice, [7])
        # The stream starts a little early (PostgreSQL: at the oldest transaction running on
        # the server), so it may give earlier changes again first: as they are now.
        seven = {"id": f"{7:032x}", "text": "#7", "_deleted": False}
        documents: list[dict[str, Any]] = []
        while seven not in documents:
            message = (await receive(ws))["payload"]["data"]["recordChanges"]
            assert message["resync"] is False
            documents += message["documents"]
        assert all(d in [*pulled["documents"], seven] for d in documents)
        # The stream's checkpoint is one pulls continue from.
        after = await alice.data(PULL, checkpoint=message["checkpoint"])
        assert after["pullRecords"]["documents"] == []


async def test_an_error_comes_with_data_and_ends_the_stream(server: GatewayServer) -> None:
    """RxDB's client reads the field of every message (``data[field]``): a message with
    ``data: null`` would crash it, so errors come as the field's error."""
    await make_project(server)
    admin = server.client(server.token("root", Role.ADMIN))
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        await subscribed(ws, token)
        assert (await receive(ws))["payload"]["data"]["recordChanges"]["resync"]
        await admin.data('mutation { removeProjectMember(project: "live", user: "alice") }')
        message = await receive(ws)
        assert message["type"] == "next"
        assert message["payload"]["data"] == {"recordChanges": None}
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
        assert (await receive(ws))["type"] == "complete"


async def test_a_bad_token_in_headers_is_refused(server: GatewayServer) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[PROTOCOL]) as ws:
        payload = {"headers": {"Authorization": "Bearer not-a-token"}}
        await send(ws, {"type": "connection_init", "payload": payload})
        try:
            await receive(ws)
            raise AssertionError("the connection was accepted")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403
