"""Production mode and browsers: introspection, GraphiQL, suggestions, headers, CORS and the
WebSocket Origin check, against the real server (and once through `gateway serve` itself)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from gateway.app import create_app
from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, error_code, serve_in_thread, settings_for

APP = "https://app.example.org"
EVIL = "https://evil.example"
HEARTBEAT = "subscription { heartbeat(intervalMs: 100, count: 2) { seq } }"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def production(migrated_url: str) -> Iterator[GatewayServer]:
    settings = settings_for(migrated_url, environment="production", cors_origins=(APP,))
    with GatewayServer.running(settings) as server:
        yield server


def running(url: str, **overrides: Any) -> AbstractContextManager[GatewayServer]:
    return GatewayServer.running(settings_for(url, **overrides))


# Introspection and suggestions


async def test_production_refuses_introspection_but_answers_typename(
    production: GatewayServer,
) -> None:
    client = production.client(production.token("root", Role.ADMIN))
    for query in ("{ __schema { queryType { name } } }", '{ __type(name: "Query") { name } }'):
        body = await client.execute(query)
        assert body.get("data") is None, body
        assert body["errors"], body
        for error in body["errors"]:
            assert error_code(error) == "BAD_USER_INPUT"
            assert "introspection has been disabled" in error["message"]
    assert await client.data("{ __typename me { id __typename } }") == {
        "__typename": "Query",
        "me": {"id": "root", "__typename": "Me"},
    }


async def test_introspection_and_graphiql_switches_override_the_environment(
    migrated_url: str,
) -> None:
    """Suggestions follow introspection: they would give away what introspection hides."""
    introspect, typo = "{ __schema { queryType { name } } }", "{ me { idd } }"
    with running(migrated_url, environment="production", introspection=True, graphiql=True) as on:
        client = on.client(on.token("root", Role.ADMIN))
        assert await client.data(introspect) == {"__schema": {"queryType": {"name": "Query"}}}
        assert "Did you mean 'id'?" in (await client.error(typo))["message"]
        assert (await ide_page(on)).status_code == 200
    with running(migrated_url, introspection=False, graphiql=False) as off:
        client = off.client(off.token("root", Role.ADMIN))
        assert error_code((await client.execute(introspect))["errors"][0]) == "BAD_USER_INPUT"
        assert "Did you mean" not in (await client.error(typo))["message"]
        assert (await ide_page(off)).status_code == 404


# Every mistake a client can make in a document or its variables; each has a suggestion to give.
MISTAKES: list[tuple[str, dict[str, Any]]] = [
    ("{ me { idd } }", {}),  # field
    ('{ project(cod: "x") { code } }', {}),  # argument
    ("query($t: ActionTyp) { __typename }", {}),  # type
    ('{ devices(project: "x", status: UP_TO_DAT) { deviceId } }', {}),  # enum literal
    (
        'query($s: DeviceStatus) { devices(project: "x", status: $s) { deviceId } }',
        {"s": "UP_TO_DAT"},  # enum value of a variable, coerced at execution
    ),
]


async def test_production_errors_suggest_no_names(production: GatewayServer) -> None:
    client = production.client(production.token("root", Role.ADMIN))
    for query, variables in MISTAKES:
        body = await client.execute(query, **variables)
        assert body["errors"], body
        for error in body["errors"]:
            assert "Did you mean" not in error["message"], (query, error)
            assert error_code(error) == "BAD_USER_INPUT"
    # The same over a WebSocket, where subscriptions are validated.
    token = production.token("root", Role.ADMIN)
    async with ws_session(production, token) as ws:
        await ws.send(subscribe("1", "subscription { heartbeat(count: 1) { seqq } }"))
        message = json.loads(await ws.recv())
    assert message["type"] == "error", message
    assert "Did you mean" not in json.dumps(message)
    assert "seqq" in message["payload"][0]["message"]


async def test_development_keeps_suggestions(server: GatewayServer) -> None:
    client = server.client(server.token("root", Role.ADMIN))
    for query, variables in MISTAKES:
        errors = (await client.execute(query, **variables))["errors"]
        assert any("Did you mean" in e["message"] for e in errors), errors


# GraphiQL


async def ide_page(server: GatewayServer, path: str = "/graphql") -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.get(path, headers={"Accept": "text/html"})


async def test_production_serves_no_graphiql_but_answers_queries_over_get(
    production: GatewayServer,
) -> None:
    page = await ide_page(production)
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower()
    async with httpx.AsyncClient(base_url=production.base_url) as http:
        assert (await http.get("/", headers={"Accept": "text/html"})).status_code == 404
        asset = await http.get("/graphql-assets/graphiql@3.8.3/graphiql.min.js")
        assert asset.status_code == 404
        answer = await http.get("/graphql", params={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}


# Headers


async def test_no_server_header_and_security_headers_on_every_response(
    production: GatewayServer,
) -> None:
    async with httpx.AsyncClient(base_url=production.base_url) as http:
        responses = [
            await http.post("/graphql", json={"query": "{ __typename }"}),
            await http.post("/graphql", json={"query": "{ me { id } }"}),  # unauthenticated
            await http.post("/graphql", content=b"{not json", headers={"Content-Type": "x/y"}),
            await http.get("/graphql", headers={"Accept": "text/html"}),  # 404: no GraphiQL
            await http.get("/healthz"),
            await http.get("/readyz"),
            await http.get("/nowhere"),
            await http.options("/graphql", headers=preflight(EVIL)),  # refused preflight
            await http.options("/graphql", headers=preflight(APP)),
        ]
    for response in responses:
        where = f"{response.request.method} {response.request.url} -> {response.status_code}"
        assert "server" not in response.headers, where
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, where
        assert response.headers["content-security-policy"].startswith("default-src 'none'"), where
        # Plain HTTP: Strict-Transport-Security would be ignored by browsers anyway.
        assert "strict-transport-security" not in response.headers, where
    assert {r.status_code for r in responses} >= {200, 400, 404}


async def test_even_unexpected_failures_carry_the_headers(migrated_url: str) -> None:
    """Starlette answers an unhandled exception itself (500): that answer is dressed too, CORS
    included, so a frontend can read it."""

    async def boom(_: Request) -> Response:
        raise RuntimeError("boom")

    settings = settings_for(migrated_url, environment="production", cors_origins=(APP,))
    app = create_app(settings)
    app.router.routes.append(Route("/boom", boom))
    with serve_in_thread(app) as port:
        async with httpx.AsyncClient() as http:
            failed = await http.get(f"http://127.0.0.1:{port}/boom", headers={"Origin": APP})
    assert failed.status_code == 500
    for name, value in SECURITY_HEADERS.items():
        assert failed.headers[name] == value
    assert failed.headers["access-control-allow-origin"] == APP
    assert "boom" not in failed.text


async def test_hsts_only_on_https_in_production(
    production: GatewayServer, server: GatewayServer
) -> None:
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (a TLS-terminating proxy)."""
    behind_tls = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient() as http:
        prod = await http.get(production.base_url + "/healthz", headers=behind_tls)
        dev = await http.get(server.base_url + "/healthz", headers=behind_tls)
    assert prod.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in dev.headers


async def test_graphiql_in_development_has_its_own_content_security_policy(
    server: GatewayServer,
) -> None:
    page = await ide_page(server)
    assert page.status_code == 200
    assert "server" not in page.headers
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    # Its own scripts and the inline bootstrap script (by hash), nothing from elsewhere.
    assert re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]+=*'", csp["script-src"]), csp
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in page.headers["content-security-policy"]


# CORS


def preflight(origin: str, headers: str = "authorization, content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def cors_answers(
    server: GatewayServer, origin: str, **request_headers: str
) -> tuple[httpx.Response, httpx.Response]:
    """The preflight and the actual POST a browser would send from ``origin``."""
    async with httpx.AsyncClient() as http:
        options = await http.options(server.url, headers={**preflight(origin), **request_headers})
        post = await http.post(
            server.url,
            json={"query": "{ me { id } }"},
            headers={"Origin": origin, "Authorization": f"Bearer {server.token('a', Role.ADMIN)}"},
        )
    return options, post


async def test_cors_allows_listed_origins_with_the_token_headers(
    production: GatewayServer,
) -> None:
    options, post = await cors_answers(production, APP)
    assert options.status_code == 200
    assert options.headers["access-control-allow-origin"] == APP
    allowed = {
        h.strip().lower() for h in options.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-auth-token"} <= allowed
    assert "POST" in options.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in options.headers
    assert post.headers["access-control-allow-origin"] == APP
    assert "origin" in post.headers["vary"].lower()
    assert "access-control-allow-credentials" not in post.headers
    assert post.json() == {"data": {"me": {"id": "a"}}}


async def test_cors_refuses_other_origins(production: GatewayServer) -> None:
    for origin in (EVIL, "http://localhost:5173", APP + ":8443", "http://app.example.org"):
        options, post = await cors_answers(production, origin)
        assert options.status_code == 400, origin
        assert "access-control-allow-origin" not in options.headers, origin
        # Without the header the browser keeps the answer from the page.
        assert "access-control-allow-origin" not in post.headers, origin


async def test_cors_refuses_headers_it_does_not_know(production: GatewayServer) -> None:
    async with httpx.AsyncClient() as http:
        options = await http.options(production.url, headers=preflight(APP, "x-custom"))
    assert options.status_code == 400


async def test_cors_credentials_only_when_switched_on(migrated_url: str) -> None:
    with running(
        migrated_url, environment="production", cors_origins=(APP,), cors_allow_credentials=True
    ) as server:
        options, post = await cors_answers(server, APP)
    assert options.headers["access-control-allow-credentials"] == "true"
    assert post.headers["access-control-allow-credentials"] == "true"
    assert post.headers["access-control-allow-origin"] == APP


async def test_production_without_a_list_allows_no_browser_origin(migrated_url: str) -> None:
    with running(migrated_url, environment="production") as server:
        for origin in ("http://localhost:5173", "http://127.0.0.1:3000", APP):
            options, post = await cors_answers(server, origin)
            assert options.status_code == 400, origin
            assert "access-control-allow-origin" not in post.headers, origin


async def test_development_allows_localhost_origins_until_a_list_is_set(
    server: GatewayServer, migrated_url: str
) -> None:
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "https://[::1]:8443"):
        options, _ = await cors_answers(server, origin)
        assert options.headers.get("access-control-allow-origin") == origin, origin
    for origin in (APP, "http://localhost.evil.example", "http://127.0.0.1.evil.example:80"):
        options, _ = await cors_answers(server, origin)
        assert options.status_code == 400, origin
    with running(migrated_url, cors_origins=(APP,)) as listed:
        assert (await cors_answers(listed, "http://localhost:5173"))[0].status_code == 400
        assert (await cors_answers(listed, APP))[0].status_code == 200


async def test_requests_without_origin_are_always_served(production: GatewayServer) -> None:
    client = production.client(production.token("dev-1", Role.PATIENT))
    assert await client.data("{ me { id } }") == {"me": {"id": "dev-1"}}


# The WebSocket Origin check


def subscribe(id_: str, query: str) -> str:
    return json.dumps({"id": id_, "type": "subscribe", "payload": {"query": query}})


@asynccontextmanager
async def ws_session(
    server: GatewayServer, token: str, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    """An acknowledged graphql-transport-ws connection, sent ``Origin: origin`` when given."""
    async with connect(
        server.ws_url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        origin=Origin(origin) if origin else None,
        open_timeout=10,
    ) as ws:
        init = {"Authorization": f"Bearer {token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        yield ws


async def heartbeats(server: GatewayServer, origin: str | None) -> list[int]:
    async with (
        asyncio.timeout(10),
        ws_session(server, server.token("w", Role.PATIENT), origin) as ws,
    ):
        await ws.send(subscribe("1", HEARTBEAT))
        seqs = []
        while (message := json.loads(await ws.recv()))["type"] == "next":
            seqs.append(message["payload"]["data"]["heartbeat"]["seq"])
    assert message == {"id": "1", "type": "complete"}
    return seqs


async def refused_upgrade(server: GatewayServer, origin: str) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await heartbeats(server, origin)
    return refused.value


async def test_websocket_origin_allowed_refused_and_absent(production: GatewayServer) -> None:
    assert await heartbeats(production, APP) == [1, 2]
    assert await heartbeats(production, None) == [1, 2]  # a device app, not a browser
    # GraphiQL (when switched on) connects from the gateway's own origin.
    assert await heartbeats(production, production.base_url) == [1, 2]
    for origin in (EVIL, "http://localhost:5173", "null"):
        refusal = await refused_upgrade(production, origin)
        assert refusal.response.status_code == 403, origin
        assert refusal.response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in refusal.response.headers


async def test_websocket_origins_in_development(server: GatewayServer, migrated_url: str) -> None:
    assert await heartbeats(server, "http://localhost:5173") == [1, 2]
    assert (await refused_upgrade(server, APP)).response.status_code == 403
    with running(migrated_url, environment="production") as unlisted:
        assert (
            await refused_upgrade(unlisted, "http://localhost:5173")
        ).response.status_code == 403
        assert await heartbeats(unlisted, None) == [1, 2]


async def test_introspection_is_refused_over_websockets_too(production: GatewayServer) -> None:
    async with ws_session(production, production.token("root", Role.ADMIN)) as ws:
        await ws.send(subscribe("1", "{ __schema { queryType { name } } }"))
        message = json.loads(await ws.recv())
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# `gateway serve` itself


async def test_gateway_serve_in_production(migrated_url: str, tmp_path: Path) -> None:
    """The console script runs the same configuration: no server header, nothing to explore."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_ENVIRONMENT": "production",
        "GATEWAY_DATABASE_URL": migrated_url,
        "GATEWAY_JWT_SECRET": "serve-secret-" + "s" * 40,
        "GATEWAY_PORT": str(port),
    }
    gateway = str(Path(sys.executable).with_name("gateway"))
    proc = await asyncio.create_subprocess_exec(
        gateway, "serve", "--log-level", "warning",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            ready = await wait_until_up(http, proc)
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            schema = await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert ready.status_code == 200, stderr
    for response in (ready, page, schema):
        assert "server" not in response.headers
        assert response.headers["x-frame-options"] == "DENY"
    assert page.status_code == 404
    assert error_code(schema.json()["errors"][0]) == "BAD_USER_INPUT"


async def wait_until_up(
    http: httpx.AsyncClient, proc: asyncio.subprocess.Process
) -> httpx.Response:
    async with asyncio.timeout(60):
        while True:
            assert proc.returncode is None, "gateway serve exited early"
            try:
                return await http.get("/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.1)


# Settings


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No GATEWAY_* variable of the machine's leaks into settings tests."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    return monkeypatch


def fresh(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_cors_origins_are_read_as_a_comma_separated_list(environ: pytest.MonkeyPatch) -> None:
    origins = "https://App.Example.org/, http://localhost:5173,https://x.org:443,http://[::1]:80"
    environ.setenv("GATEWAY_CORS_ORIGINS", origins)
    assert fresh().cors_origins == (
        "https://app.example.org",
        "http://localhost:5173",
        "https://x.org",
        "http://[::1]",
    )
    environ.setenv("GATEWAY_CORS_ORIGINS", "")
    assert fresh().cors_origins == ()  # set but empty: no browser origin, even in development
    environ.delenv("GATEWAY_CORS_ORIGINS")
    assert fresh().cors_origins is None


@pytest.mark.parametrize(
    "origin", ["ftp://x.org", "https://x.org/app", "null", "https://user@x.org", "x.org"]
)
def test_cors_origins_must_be_origins(environ: pytest.MonkeyPatch, origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        fresh(cors_origins=origin)


def test_credentials_are_not_for_every_origin(environ: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="not \\*"):
        fresh(cors_origins="*", cors_allow_credentials=True)


def test_introspection_and_graphiql_default_by_environment(environ: pytest.MonkeyPatch) -> None:
    dev, prod = fresh(), fresh(environment="production")
    assert (dev.introspection_enabled, dev.graphiql_enabled) == (True, True)
    assert (prod.introspection_enabled, prod.graphiql_enabled) == (False, False)
    both = fresh(environment="production", introspection=True, graphiql=True)
    assert (both.introspection_enabled, both.graphiql_enabled) == (True, True)
