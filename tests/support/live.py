"""Helpers for live tests: a project over HTTP, subscriptions over WebSockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from gql import Client, gql
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport

from gateway.auth.principal import Role
from tests.support import GatewayServer, GraphQLHttp, create_project

PROTOCOLS = [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]

SUBSCRIBE = """subscription($project: String!, $progress: [ProgressInput!], $deviceId: String,
                            $filter: ActionFilter, $maxCount: Int! = 0, $user: String) {
  databaseActions(project: $project, progress: $progress, deviceId: $deviceId,
                  filter: $filter, maxCount: $maxCount, user: $user) {
    actions { table user action recordId time source deviceId }
    progress { table cursor }
    hasMore
  }
}"""
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String, $user: String) {
  writeActions(project: "live", actions: $actions, deviceId: $deviceId, user: $user) { accepted }
}"""


async def make_project(server: GatewayServer) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "live", "Live")
    for table in ("notes", "steps"):
        await admin.data(
            f'mutation {{ defineTable(project: "live", name: "{table}", '
            '  fields: [{name: "text", type: STRING, required: true}]) { name } }'
        )


def note(n: int, user: str = "alice", table: str = "notes") -> dict[str, Any]:
    return {
        "table": table, "user": user, "action": "INSERT", "recordId": f"{n:032x}",
        "time": 1_700_000_000_000 + n, "order": 0, "jsonData": json.dumps({"text": f"#{n}"}),
    }  # fmt: skip


async def write_notes(
    client: GraphQLHttp, numbers: range | list[int], *, device: str = "phone", **kw: Any
) -> None:
    actions = [note(n, **kw) for n in numbers]
    await client.data(WRITE, actions=actions, deviceId=device, user=kw.get("user"))


@asynccontextmanager
async def live_session(
    server: GatewayServer, token: str, protocol: str
) -> AsyncIterator[AsyncClientSession]:
    transport = WebsocketsTransport(
        url=server.ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[protocol],
        connect_timeout=10,
    )
    async with Client(transport=transport) as session:
        yield session


@asynccontextmanager
async def subscribed(
    session: AsyncClientSession, query: str, **variables: Any
) -> AsyncIterator[AsyncGenerator[dict[str, Any], None]]:
    """A subscription, stopped on exit (an abandoned one would hold the connection open until
    gql's close timeout)."""
    request = gql(query)
    request.variable_values = variables
    stream = session.subscribe(request)
    try:
        yield stream
    finally:
        await stream.aclose()


def subscription(
    session: AsyncClientSession, **variables: Any
) -> AbstractAsyncContextManager[AsyncGenerator[dict[str, Any], None]]:
    """A databaseActions subscription of the "live" project."""
    return subscribed(session, SUBSCRIBE, **{"project": "live", **variables})


async def take(
    stream: AsyncIterator[dict[str, Any]],
    until: Callable[[list[dict[str, Any]]], bool],
    seconds: float = 15,
) -> list[dict[str, Any]]:
    """Messages from a subscription until ``until`` holds for them. A returned stream is
    left open, to take more from; one that raised is closed."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while True:
            try:
                message = await anext(stream)
            except StopAsyncIteration:
                return got
            got.append(message["databaseActions"])
            if until(got):
                return got


def record_ids(batches: list[dict[str, Any]]) -> list[str]:
    return [a["recordId"] for b in batches for a in b["actions"]]


def count_at_least(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda batches: len(record_ids(batches)) >= n


def progress_of(batch: dict[str, Any]) -> list[dict[str, str]]:
    return [{"table": p["table"], "cursor": p["cursor"]} for p in batch["progress"]]
