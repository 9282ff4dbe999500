"""Transport limits, tried the way a hostile client would, over real sockets: oversized and
endless bodies, slow heads, too many connections, oversized WebSocket messages, WebSockets
that never say hello, and one caller asking too often. Each limit is set small here."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.auth.principal import Role
from gateway.http_limits import RateLimiter
from tests.support import _TLS, GatewayServer, create_project, settings_for

HEARTBEAT = "subscription { heartbeat(intervalMs: 5000) { seq } }"
WRITE = (
    'mutation($actions: [ActionInput!]!) { writeActions(project: "lim", deviceId: "phone", '
    "actions: $actions) { accepted } }"
)
READ = 'query { actions(project: "lim", deviceId: "laptop") { actions { recordId } } }'


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database, for limits that never reach the database."""
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def running(sqlite_url: str) -> Iterator[Any]:
    """``running(**settings)``: a gateway with these settings, stopped after the test."""
    stack: list[Any] = []

    def start(**overrides: Any) -> GatewayServer:
        context = GatewayServer.running(settings_for(sqlite_url, **overrides))
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def limit_error(body: bytes | str) -> dict[str, Any]:
    document = json.loads(body)
    assert set(document) == {"errors"}, document
    (error,) = document["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    assert "limit" in error["extensions"], error
    return error


async def raw_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read off a raw socket: status, headers, body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return int(status_line.split()[1]), headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionResetError:
        return True


async def define_project(server: GatewayServer) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "lim", "Limits")
    await admin.data(
        'mutation { defineTable(project: "lim", name: "steps", fields: '
        '[{name: "value", type: FLOAT, required: true}]) { name } }'
    )


def actions(count: int) -> list[dict[str, Any]]:
    return [
        {
            "table": "steps",
            "user": "alice",
            "action": "INSERT",
            "recordId": f"{n:032x}",
            "time": 1_000 + n,
            "order": 0,
            "jsonData": json.dumps({"value": float(n)}),
        }
        for n in range(count)
    ]


async def nothing_written(server: GatewayServer) -> None:
    alice = server.client(server.token("alice", Role.PATIENT))
    assert (await alice.data(READ))["actions"]["actions"] == []
    admin = server.client(server.token("root", Role.ADMIN))
    devices = await admin.data('{ devices(project: "lim") { deviceId } }')
    phones = [d for d in devices["devices"] if d["deviceId"] == "phone"]
    assert phones == [], "a refused write must not even register its device"


# Request bodies


async def test_a_body_over_the_limit_is_413_and_writes_nothing(
    migrated_url: str,
) -> None:
    with GatewayServer.running(settings_for(migrated_url, max_body_bytes=4096)) as server:
        await define_project(server)
        token = server.token("alice", Role.PATIENT)
        async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
            big = {"query": WRITE, "variables": {"actions": actions(100)}}
            refused = await http.post(
                server.url, json=big, headers={"Authorization": f"Bearer {token}"}
            )
        assert refused.status_code == 413
        assert refused.headers["content-type"].startswith("application/json")
        assert refused.headers["connection"] == "close"
        assert limit_error(refused.content)["extensions"]["limit"] == 4096
        await nothing_written(server)
        # The same write, under the limit, goes through.
        alice = server.client(token)
        written = await alice.data(WRITE, actions=actions(5))
        assert written["writeActions"]["accepted"] == [0, 1, 2, 3, 4]


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    running: Any,
) -> None:
    """50 MB announced: answered at once from ``Content-Length``, without waiting for (or
    asking, with ``100 Continue``, for) a byte of it."""
    server = running(max_body_bytes=1024 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: 52428800\r\n\r\n"
    )
    await writer.drain()
    status, _, body = await raw_response(reader)
    assert status == 413
    assert limit_error(body)["extensions"]["limit"] == 1024 * 1024
    assert await closed_by_server(reader)
    writer.close()


async def test_a_chunked_body_is_counted_as_it_streams_in(running: Any) -> None:
    server = running(max_body_bytes=10_000)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 4000
    for _ in range(3):  # 12,000 bytes, no length declared
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await writer.drain()
    status, _, body = await raw_response(reader)
    assert status == 413
    assert limit_error(body)["extensions"]["limit"] == 10_000
    assert await closed_by_server(reader)
    writer.close()


async def test_a_body_sent_one_byte_a_second_is_cut_off(running: Any) -> None:
    server = running(body_timeout_seconds=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    started = time.monotonic()

    async def drip() -> None:
        for byte in b'{"query": "{ __typename }"}':
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.25)

    dripping = asyncio.create_task(drip())
    try:
        status, headers, body = await raw_response(reader)
    finally:
        dripping.cancel()
    assert status == 408
    assert 0.9 < time.monotonic() - started < 5
    assert headers["connection"] == "close"
    assert limit_error(body)["extensions"]["limit"] == 1.0
    assert await closed_by_server(reader)
    writer.close()


# Request heads


async def test_slow_heads_are_answered_408_and_closed(running: Any) -> None:
    """Slowloris: many connections each sending a header line now and then, and one that
    sends nothing at all, are all closed once the head timeout passes."""
    server = running(header_timeout_seconds=1.0)
    connections = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    for _, writer in connections:
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")

    async def drip(writer: asyncio.StreamWriter) -> None:
        for n in range(40):
            writer.write(b"X-Slow-%d: a\r\n" % n)
            await asyncio.sleep(0.2)

    dripping = [asyncio.create_task(drip(w)) for _, w in connections]
    try:
        answers = await asyncio.gather(*(raw_response(r) for r, _ in connections))
    finally:
        for task in dripping:
            task.cancel()
    assert 0.9 < time.monotonic() - started < 5
    for status, headers, body in answers:
        assert status == 408
        assert headers["connection"] == "close"
        assert limit_error(body)["extensions"]["limit"] == 1.0
    for reader, _ in connections:
        assert await closed_by_server(reader)
    assert (await raw_response(silent_reader))[0] == 408
    assert await closed_by_server(silent_reader)
    for _, writer in [*connections, (silent_reader, silent_writer)]:
        writer.close()
    # The gateway still serves.
    async with httpx.AsyncClient(verify=_TLS) as http:
        assert (await http.get(server.base_url + "/healthz")).status_code == 200


async def test_keep_alive_connections_are_not_taken_for_slow_heads(running: Any) -> None:
    """The head timeout runs from a request's first byte, not from the connection's start."""
    server = running(header_timeout_seconds=1.0)
    async with httpx.AsyncClient(verify=_TLS) as http:
        for _ in range(3):
            response = await http.post(server.url, json={"query": "{ __typename }"})
            assert response.status_code == 200
            await asyncio.sleep(0.6)


async def test_a_head_over_the_limit_is_431(running: Any) -> None:
    """The client may still be sending when it is refused: it reads the 431 all the same."""
    server = running(max_header_bytes=8192)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    for n in range(500):
        writer.write(b"X-Big-%d: %s\r\n" % (n, b"a" * 200))
        await writer.drain()
    status, _, body = await raw_response(reader)
    assert status == 431
    assert limit_error(body)["extensions"]["limit"] == 8192
    writer.close()


# Connections


async def test_connections_over_the_cap_are_503_with_a_json_body(running: Any) -> None:
    server = running(max_connections=3, header_timeout_seconds=30)
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient(verify=_TLS) as http:
        assert (await http.get(server.base_url + "/healthz")).status_code == 200  # the third
    idle.append(await asyncio.open_connection("127.0.0.1", server.port))
    await asyncio.sleep(0.1)
    async with httpx.AsyncClient(verify=_TLS) as http:
        refused = await http.post(server.url, json={"query": "{ __typename }"})
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert limit_error(refused.content)["extensions"]["limit"] == 3
    # WebSocket upgrades count too, and are refused the same way.
    with pytest.raises(InvalidStatus) as upgrade:
        async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]):
            pass
    assert upgrade.value.response.status_code == 503
    assert limit_error(upgrade.value.response.body)["extensions"]["limit"] == 3
    for _, writer in idle:
        writer.close()
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(verify=_TLS) as http:
        assert (await http.post(server.url, json={"query": "{ __typename }"})).status_code == 200


# WebSockets


async def test_a_websocket_message_over_the_limit_closes_with_1009(running: Any) -> None:
    server = running(ws_max_message_bytes=2048)
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "{ __typename " + " " * 4096 + "}"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": query}}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_websocket_without_connection_init_is_closed_with_4408(
    running: Any, protocol: str
) -> None:
    server = running(ws_connection_init_timeout_seconds=0.5)
    started = time.monotonic()
    async with websockets.connect(server.ws_url, subprotocols=[protocol]) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    assert time.monotonic() - started < 5


async def test_a_legacy_websocket_that_said_hello_stays_open(running: Any) -> None:
    server = running(ws_connection_init_timeout_seconds=0.5)
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=["graphql-ws"]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await asyncio.sleep(1.0)
        query = "subscription { heartbeat(intervalMs: 100, count: 1) { seq } }"
        await ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": query}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "data"


# Rate limits


async def test_a_user_over_the_rate_gets_429_and_writes_nothing(migrated_url: str) -> None:
    settings = settings_for(migrated_url, rate_limit_per_second=0.5, rate_limit_burst=10)
    with GatewayServer.running(settings) as server:
        await define_project(server)  # seven requests of the admin's own ten
        alice = server.token("alice", Role.PATIENT)
        bob = server.token("bob", Role.PATIENT)
        async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:

            async def post(token: str | None, query: str, **variables: Any) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                body = {"query": query, "variables": variables}
                return await http.post(server.url, json=body, headers=headers)

            for _ in range(10):
                assert (await post(alice, "{ me { id } }")).status_code == 200
            refused = await post(alice, WRITE, actions=actions(1))
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 2
            assert refused.headers["x-content-type-options"] == "nosniff"
            error = limit_error(refused.content)
            assert error["extensions"]["limit"] == 0.5
            assert error["extensions"]["burst"] == 10
            # Another user has a bucket of their own; probes are never limited.
            assert (await post(bob, "{ me { id } }")).status_code == 200
            for _ in range(12):
                assert (await http.get(server.base_url + "/healthz")).status_code == 200
                assert (await http.get(server.base_url + "/readyz")).status_code == 200
            # Anonymous callers count by address, and a bad token is anonymous.
            for _ in range(10):
                assert (await post("not-a-token", "{ __typename }")).status_code == 200
            assert (await post(None, "{ __typename }")).status_code == 429
        await asyncio.sleep(2.1)  # one request again for alice (0.5 a second)
        await nothing_written(server)


@pytest.mark.parametrize(
    ("protocol", "start", "error_payload"),
    [
        ("graphql-transport-ws", "subscribe", lambda m: m["payload"][0]),
        ("graphql-ws", "start", lambda m: m["payload"]),
    ],
)
async def test_operations_over_websockets_share_the_users_rate(
    running: Any, protocol: str, start: str, error_payload: Any
) -> None:
    server = running(rate_limit_per_second=0.2, rate_limit_burst=3)
    token = server.token("alice", Role.PATIENT)
    async with httpx.AsyncClient(verify=_TLS) as http:
        response = await http.post(
            server.url,
            json={"query": "{ me { id } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200  # one of alice's three
    async with websockets.connect(server.ws_url, subprotocols=[protocol]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for n in (1, 2, 3):
            await ws.send(
                json.dumps({"type": start, "id": str(n), "payload": {"query": HEARTBEAT}})
            )
        seen: dict[str, Any] = {}
        while len(seen) < 3:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            seen.setdefault(message.get("id"), message)
    assert seen["3"]["type"] == "error"
    error = error_payload(seen["3"])
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["retryAfterSeconds"] >= 1
    assert {seen["1"]["type"], seen["2"]["type"]} <= {"next", "data"}


def test_token_buckets_refill_and_forget_idle_callers() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one more in half a second
    assert limiter.take("b") == 0.0  # buckets are per caller
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    now[0] = 60.0  # both buckets full again: forgotten at the next sweep
    limiter.take("c")
    assert set(limiter._buckets) == {"c"}
    assert RateLimiter(rate=0, burst=1).take("a") == 0.0  # 0: no limit
