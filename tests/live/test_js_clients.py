"""The clients frontend and mobile teams bring, against a running gateway on both databases:
Apollo Client, urql and graphql-ws in Node (tests/node/clients.mjs), and Python's gql.

Each live subscription resumes the way the README's client recipes say: it stores the progress
of every message and, when it ends (an expired token, a dropped socket, a restarted gateway),
subscribes again with the latest; no action may arrive twice or go missing.

Without Node or tests/node/node_modules (``npm ci --prefix tests/node``) the Node test skips and
says why, except under CI=true, where it fails."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
from typing import IO, Any

from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import TEST_SECRET, GatewayServer
from tests.support.live import (
    SUBSCRIBE,
    WRITE,
    live_session,
    make_project,
    note,
    progress_of,
    subscribed,
    take,
)
from tests.support.node import NODE_PROJECT, node_or_skip

NODE_SECONDS = 60  # the whole run takes a few seconds; this only stops a hung one


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The lines of ``stream`` as they come (None at its end), read by a thread."""
    found: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            found.put(line)
        found.put(None)

    threading.Thread(target=read, daemon=True).start()
    return found


def _next_json(lines: queue.Queue[str | None], stderr: IO[str]) -> dict[str, Any]:
    line = lines.get(timeout=NODE_SECONDS)
    assert line is not None, f"node ended early: {stderr.read()}"
    return json.loads(line)


def test_apollo_urql_and_graphql_ws_query_write_and_resume_live(settings: Settings) -> None:
    node = node_or_skip("@apollo/client", "the JS clients test")
    with GatewayServer.running(settings) as first:
        asyncio.run(make_project(first))
        config = {"http": first.url, "ws": first.ws_url, "secret": TEST_SECRET}
        process = subprocess.Popen(
            [node, str(NODE_PROJECT / "clients.mjs"), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        try:
            lines = _lines(process.stdout)
            phase = _next_json(lines, process.stderr)
            assert phase == {"phase": "restart"}, phase.get("failed", phase)
        except BaseException:
            process.kill()
            raise
    # The gateway restarted (the same database); actions were written while it was down.
    with GatewayServer.running(settings) as second:
        alice = second.client(second.token("alice", Role.PATIENT))
        asyncio.run(alice.data(WRITE, actions=[note(7), note(8)], deviceId="phone"))
        process.stdin.write(json.dumps({"http": second.url, "ws": second.ws_url}) + "\n")
        process.stdin.flush()
        try:
            report = _next_json(lines, process.stderr)
            process.wait(timeout=NODE_SECONDS)
        finally:
            process.kill()
    assert "failed" not in report, report["failed"]
    assert process.returncode == 0

    # Apollo: the persisted-query link sent the hash alone, then (not found) the query too...
    assert report["apolloQuery"]["me"] == "alice"
    assert [s["query"] for s in report["apolloQuery"]["sent"]] == [False, True]
    # ... and a client started later sends the hash only.
    assert report["apolloPersisted"]["me"] == "alice"
    assert [s["query"] for s in report["apolloPersisted"]["sent"]] == [False]
    assert report["apolloWrite"] == [0]  # the index of each action accepted
    # Its WebSocket token expired mid-stream: the gateway said so, the client reconnected with
    # a fresh token from its connectionParams function and went on from its latest progress.
    live = report["apolloLive"]
    assert live["received"] == [1, 2, 3]
    assert live["starts"] >= 2
    assert live["ends"][0] == "token expired: reconnect with a new token"
    assert [4403, "token expired: reconnect with a new token"] in live["closes"]
    assert report["apolloMultipart"] == [[4]]
    # urql: its first sync, then its socket dropped.
    assert report["urqlQuery"] == "alice"
    assert report["urqlWrite"] == [0]
    assert report["urqlLive"]["received"] == [1, 2, 3, 4, 5, 6]
    assert report["urqlLive"]["ends"][0] == "[Network] 4499: Terminated"
    # graphql-ws: across the restart, the actions written meanwhile once each.
    assert report["wsLive"]["received"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert report["wsLive"]["ends"][0].startswith("closed "), report["wsLive"]


async def test_gql_queries_writes_and_resumes_a_subscription(server: GatewayServer) -> None:
    await make_project(server)
    token = server.token("alice", Role.PATIENT)
    transport = HTTPXAsyncTransport(url=server.url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as http:
        assert await http.execute(gql("{ me { id } }")) == {"me": {"id": "alice"}}

        async def write(*numbers: int) -> None:
            request = gql(WRITE)
            request.variable_values = {"actions": [note(n) for n in numbers], "deviceId": "phone"}
            assert (await http.execute(request))["writeActions"]["accepted"] == list(
                range(len(numbers))
            )

        await write(1)
        async with (
            live_session(server, token, "graphql-transport-ws") as session,
            subscribed(session, SUBSCRIBE, project="live", deviceId="gql") as stream,
        ):
            first = await take(stream, lambda got: bool(got and got[-1]["actions"]))
            await write(2)
            second = await take(stream, lambda got: bool(got and got[-1]["actions"]))
        progress = progress_of(second[-1])  # stored with every message
        await write(3)  # while the client is away
        async with (
            live_session(server, token, "graphql-transport-ws") as session,
            subscribed(
                session, SUBSCRIBE, project="live", deviceId="gql", progress=progress
            ) as stream,
        ):
            resumed = await take(stream, lambda got: bool(got and got[-1]["actions"]))
    received = [a["recordId"] for batch in first + second + resumed for a in batch["actions"]]
    assert received == [note(n)["recordId"] for n in (1, 2, 3)]
