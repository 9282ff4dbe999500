"""Test helpers: a real gateway under uvicorn, and small GraphQL-over-HTTP clients."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import uvicorn

from gateway.app import create_app
from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.cli import uvicorn_config
from gateway.settings import Settings

TEST_SECRET = "test-secret-" + "x" * 40
# Tests speak plain HTTP to 127.0.0.1; one TLS context for every client spares each new client
# the 50 ms httpx spends building its own (thousands of requests across the suite).
_TLS = ssl.create_default_context()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        **overrides,
    )


@dataclass
class GatewayServer:
    settings: Settings
    port: int
    app: Any = None  # the running app, where a test must look inside (this process only)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, user: str, role: Role, ttl: timedelta | None = None) -> str:
        return TokenService(self.settings).issue(user, role, ttl)

    def client(self, token: str | None = None) -> GraphQLHttp:
        return GraphQLHttp(self.url, token)

    @classmethod
    @contextmanager
    def running(cls, settings: Settings) -> Iterator[GatewayServer]:
        app = create_app(settings)
        with serve_in_thread(app) as port:
            yield cls(settings=settings, port=port, app=app)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[int]:
    """An ASGI app under uvicorn in a thread, on a free port of 127.0.0.1 (yielded)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # `gateway serve`'s configuration, so the tests see what production runs.
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


class GraphQLHttp:
    """Posts GraphQL over HTTP and returns the JSON body, errors included, for assertions."""

    def __init__(self, url: str, token: str | None = None, header: str = "Authorization") -> None:
        self.url = url
        self.headers = {}
        if token is not None:
            self.headers[header] = f"Bearer {token}" if header == "Authorization" else token

    async def execute(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30, verify=_TLS) as http:
            response = await http.post(
                self.url, json={"query": query, "variables": variables}, headers=self.headers
            )
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.json()

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a query that must succeed."""
        body = await self.execute(query, **variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        """The single error of a query that must fail."""
        body = await self.execute(query, **variables)
        assert body.get("errors"), f"expected an error, got {body}"
        assert len(body["errors"]) == 1, body["errors"]
        return body["errors"][0]


def error_code(error: dict[str, Any]) -> str:
    return error["extensions"]["code"]


# The users the tests sign in as; projects made for a test have them all as members.
MEMBERS = ("alice", "bob", "dr-carol", "jane", "jackw")


async def create_project(
    admin: GraphQLHttp, code: str, name: str, members: tuple[str, ...] = MEMBERS
) -> None:
    """A project as an admin makes one: closed (the default), then its members added."""
    await admin.data(
        "mutation($code: String!, $name: String!) { createProject(code: $code, name: $name) "
        "{ code } }",
        code=code,
        name=name,
    )
    for user in members:
        await admin.data(
            "mutation($code: String!, $user: String!) { addProjectMember(project: $code, "
            "user: $user) { code } }",
            code=code,
            user=user,
        )
