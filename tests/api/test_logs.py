"""Request ids and log lines: X-Request-ID given or generated, on HTTP and WebSocket answers;
in production one JSON object per line, each caused by a request carrying its id, and no
token or record data in any of them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from tests.support import GatewayServer, settings_for

GATEWAY = str(Path(sys.executable).with_name("gateway"))
SECRET = "logs-secret-" + "l" * 40
RECORD_SECRET = "the-patient-wrote-this-7d2f"
TRANSPORT_WS = "graphql-transport-ws"


async def get(server: GatewayServer, **headers: str | bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)


async def test_request_id_is_taken_when_sane_and_generated_otherwise(
    server: GatewayServer,
) -> None:
    given = await get(server, **{"X-Request-ID": "edge-7f3a:42"})
    assert given.headers["x-request-id"] == "edge-7f3a:42"
    generated = [(await get(server)).headers["x-request-id"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", g) for g in generated)
    assert generated[0] != generated[1]
    for insane in ("x" * 200, "a b", "id\u00e9".encode("latin-1"), "<script>", ""):
        replaced = (await get(server, **{"X-Request-ID": insane})).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced), insane
    # Refusals carry it too (here: 406, before any GraphQL runs).
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.post(
            "/graphql", json={"query": "{ __typename }"},
            headers={"Accept": "text/csv", "X-Request-ID": "refused-1"},
        )  # fmt: skip
    assert (refused.status_code, refused.headers["x-request-id"]) == (406, "refused-1")
    # And a WebSocket's handshake.
    async with websockets.connect(
        server.ws_url, subprotocols=[TRANSPORT_WS], additional_headers={"X-Request-ID": "ws-9"}
    ) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Request-ID"] == "ws-9"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def graphql(
    http: httpx.AsyncClient, token: str, query: str, request_id: str, **variables: Any
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    assert response.headers["x-request-id"] == request_id
    return response.json()


async def websocket_operations(url: str, token: str, request_id: str) -> None:
    """A query and a subscription over graphql-transport-ws, on a connection with an id."""
    async with websockets.connect(
        url, subprotocols=[TRANSPORT_WS], additional_headers={"X-Request-ID": request_id}
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = {"query": "query WsMe { me { id } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": query}))
        subscribe = {
            "query": 'subscription Feed { databaseActions(project: "logs", deviceId: "tab") '
            "{ actions { recordId jsonData } } }"
        }
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": subscribe}))
        seen: set[tuple[str, str]] = set()
        async with asyncio.timeout(15):
            while ("1", "complete") not in seen or ("2", "next") not in seen:
                message = json.loads(await ws.recv())
                seen.add((message.get("id"), message["type"]))
        await ws.send(json.dumps({"id": "2", "type": "complete"}))


async def test_production_logs_are_json_lines_with_request_ids_and_no_secrets(
    migrated_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_ENVIRONMENT": "production",
        "GATEWAY_JWT_SECRET": SECRET,
        "GATEWAY_DATABASE_URL": migrated_url,
    }
    proc = await asyncio.create_subprocess_exec(
        GATEWAY, "serve", "--port", str(port),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("Uvicorn running" in line for line in lines):
                line = (await proc.stderr.readline()).decode()
                assert line, f"gateway exited early:\n{''.join(lines)}"
                lines.append(line)
        tokens = TokenService(settings_for(migrated_url).model_copy(update={"jwt_secret": SECRET}))
        admin = tokens.issue("root", Role.ADMIN)
        alice = tokens.issue("alice", Role.PATIENT)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for mutation in (
                'mutation { createProject(code: "logs", name: "Logs", open: true) { code } }',
                'mutation { defineTable(project: "logs", name: "notes", '
                'fields: [{name: "text", type: STRING}]) { name } }',
            ):
                assert "errors" not in await graphql(http, admin, mutation, "setup")
            action = {
                "table": "notes", "user": "alice", "action": "INSERT",
                "recordId": "ab" * 16, "time": 1, "order": 0,
                "jsonData": json.dumps({"text": RECORD_SECRET}),
            }  # fmt: skip
            write = await graphql(
                http, alice,
                "mutation Push($a: [ActionInput!]!) { writeActions(project: \"logs\", "
                "actions: $a, deviceId: \"phone\") { accepted } }",
                "req-write-1", a=[action],
            )  # fmt: skip
            assert write["data"]["writeActions"]["accepted"] == [0]
            bad = await graphql(http, alice, "query Oops { me { nope } }", "req-bad-1")
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        await websocket_operations(f"ws://127.0.0.1:{port}/graphql", alice, "req-ws-1")
        # The connection's line comes last, once its handler and operations have ended.
        async with asyncio.timeout(15):
            while not ('"req-ws-1"' in lines[-1] and "websocket closed" in lines[-1]):
                line = (await proc.stderr.readline()).decode()
                assert line, f"gateway exited early:\n{''.join(lines)}"
                lines.append(line)
    finally:
        proc.terminate()
        _, rest = await proc.communicate()
    output = "".join(lines) + rest.decode()

    events = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_id.setdefault(event.get("request_id", ""), []).append(event)
    [written] = by_id["req-write-1"]
    assert written["logger"] == "gateway.access" and written["status"] == 200
    assert (written["operation"], written["type"], written["outcome"]) == (
        "Push", "mutation", "ok",
    )  # fmt: skip
    [bad_line] = by_id["req-bad-1"]
    assert (bad_line["operation"], bad_line["outcome"]) == ("Oops", "BAD_USER_INPUT")
    on_socket = {(e.get("operation"), e.get("type"), e["message"]) for e in by_id["req-ws-1"]}
    assert ("WsMe", "query", "websocket operation") in on_socket
    assert ("Feed", "subscription", "websocket operation") in on_socket
    assert (None, None, "websocket closed") in on_socket
    # Never a token, a header or record data.
    for secret in (admin, alice, RECORD_SECRET, "Bearer", SECRET):
        assert secret not in output


@pytest.fixture
def settings(migrated_url: str) -> Any:
    return settings_for(migrated_url)
