"""Subscriptions over HTTP, for networks that block WebSockets: multipart (Apollo Client's
HttpLink) and GraphQL over SSE (distinct connections mode), with the WebSocket subscriptions'
authentication, access re-checks and resumable progress, read by httpx as it streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from tests.support import _TLS, GatewayServer
from tests.support.live import SUBSCRIBE, make_project, progress_of, write_notes

MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
SSE = "text/event-stream"
TRANSPORTS = ["multipart", "sse", "sse-get"]


async def multipart_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The payloads of a multipart subscription (heartbeats, ``{}``, left out)."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while (end := buffer.find("\r\n--graphql")) >= 0:
            part, buffer = buffer[:end], buffer[end + len("\r\n--graphql") :]
            _, _, body = part.partition("\r\n\r\n")
            message = json.loads(body) if body.strip() else {}
            if "payload" in message:
                yield message["payload"]


async def sse_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The data of ``next`` events until ``complete``."""
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:") and event == "next":
            yield json.loads(line.partition(":")[2])
        elif line.startswith("data:") and event == "complete":
            return


@asynccontextmanager
async def streaming(
    server: GatewayServer, transport: str, token: str | None, variables: dict[str, Any]
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """One subscription over HTTP: its payloads as they arrive."""
    headers = {"Accept": MULTIPART if transport == "multipart" else SSE}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"query": SUBSCRIBE, "variables": {"project": "live", **variables}}
    async with httpx.AsyncClient(timeout=30, verify=_TLS) as http:
        if transport == "sse-get":
            params = {"query": body["query"], "variables": json.dumps(body["variables"])}
            request = http.stream("GET", server.url, params=params, headers=headers)
        else:
            request = http.stream("POST", server.url, json=body, headers=headers)
        async with request as response:
            assert response.status_code == 200, await response.aread()
            parse = multipart_payloads if transport == "multipart" else sse_payloads
            yield parse(response)


async def next_batch(payloads: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    async with asyncio.timeout(15):
        payload = await anext(payloads)
    assert not payload.get("errors"), payload
    return payload["data"]["databaseActions"]


def ids(batch: dict[str, Any]) -> list[str]:
    return [action["recordId"] for action in batch["actions"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_actions_stream_over_http_and_resume_from_their_progress(
    server: GatewayServer, transport: str
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    token = server.token("alice", Role.PATIENT)
    await write_notes(alice, [1, 2])
    async with streaming(server, transport, token, {"deviceId": "laptop"}) as payloads:
        first = await next_batch(payloads)  # the backlog
        assert ids(first) == [f"{1:032x}", f"{2:032x}"]
        await write_notes(alice, [3])  # written while the stream is open
        live = await next_batch(payloads)
        assert ids(live) == [f"{3:032x}"]
    # The connection dropped; the client comes back with the last progress it was given.
    await write_notes(alice, [4])
    resumed = {"deviceId": "laptop", "progress": progress_of(live)}
    async with streaming(server, transport, token, resumed) as payloads:
        assert ids(await next_batch(payloads)) == [f"{4:032x}"]


@pytest.mark.parametrize("transport", ["multipart", "sse"])
async def test_without_a_token_the_stream_is_one_unauthenticated_error(
    server: GatewayServer, transport: str
) -> None:
    async with streaming(server, transport, None, {}) as payloads:
        async with asyncio.timeout(15):
            payload = await anext(payloads)
    assert payload["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in payload or payload["data"] is None


@pytest.mark.parametrize("transport", ["multipart", "sse"])
async def test_a_removed_member_s_stream_ends_with_forbidden(
    server: GatewayServer, transport: str
) -> None:
    await make_project(server)
    admin = server.client(server.token("root", Role.ADMIN))
    bob = server.token("bob", Role.PATIENT)
    await write_notes(server.client(bob), [1], user="bob")
    async with streaming(server, transport, bob, {"deviceId": "tablet"}) as payloads:
        assert ids(await next_batch(payloads)) == [f"{1:032x}"]
        await admin.data('mutation { removeProjectMember(project: "live", user: "bob") }')
        async with asyncio.timeout(15):
            ending = await anext(payloads)
            assert ending["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            with pytest.raises(StopAsyncIteration):  # and the stream completes
                await anext(payloads)


async def test_queries_get_one_json_answer_unless_only_a_stream_is_accepted(
    server: GatewayServer,
) -> None:
    """urql lists text/event-stream and multipart/mixed in every request's Accept: a query
    still gets its JSON answer; a client accepting only a stream gets the answer as one event."""
    headers = {"Authorization": f"Bearer {server.token('alice', Role.PATIENT)}"}
    urql = "application/graphql-response+json, application/json, text/event-stream, multipart/mixed"
    async with httpx.AsyncClient(timeout=30, verify=_TLS, headers=headers) as http:
        answer = await http.post(
            server.url, json={"query": "{ me { id } }"}, headers={"Accept": urql}
        )
        assert answer.headers["content-type"].startswith("application/graphql-response+json")
        assert answer.json() == {"data": {"me": {"id": "alice"}}}
        async with http.stream(
            "POST", server.url, json={"query": "{ me { id } }"}, headers={"Accept": SSE}
        ) as response:
            assert response.headers["content-type"] == SSE
            events = [payload async for payload in sse_payloads(response)]
    assert events == [{"data": {"me": {"id": "alice"}}}]


async def test_a_stream_ends_with_unauthenticated_when_its_token_expires(
    server: GatewayServer,
) -> None:
    token = server.token("alice", Role.PATIENT, timedelta(seconds=2))
    query = "subscription { heartbeat(intervalMs: 200) { seq } }"
    headers = {"Authorization": f"Bearer {token}", "Accept": SSE}
    async with (
        httpx.AsyncClient(timeout=30, verify=_TLS) as http,
        http.stream("POST", server.url, json={"query": query}, headers=headers) as response,
    ):
        async with asyncio.timeout(15):
            payloads = [payload async for payload in sse_payloads(response)]  # to complete
    *beats, ending = payloads
    assert beats and all(beat["data"]["heartbeat"]["seq"] for beat in beats)
    assert [(e["message"], e["extensions"]["code"]) for e in ending["errors"]] == [
        ("token expired: reconnect with a new token", "UNAUTHENTICATED")
    ]
