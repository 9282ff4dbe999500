"""The HTTP surface: probes, GET queries, GraphiQL, and request-level errors."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx

from gateway.auth.principal import Role
from gateway.db.migrate import head_revision
from gateway.settings import Settings
from tests.support import GatewayServer, error_code


async def test_health_and_readiness(server: GatewayServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schemaRevision": head_revision()}


async def test_not_ready_while_the_schema_is_not_migrated(database_url: str) -> None:
    settings = Settings(
        _env_file=None, database_url=database_url, jwt_secret="z" * 40, migrate_on_start=False
    )
    with GatewayServer.running(settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            ready = await http.get("/readyz")
            health = await http.get("/healthz")
    assert ready.status_code == 503
    assert "gateway migrate" in ready.json()["reason"]
    assert health.status_code == 200


async def test_not_ready_when_the_database_is_unreachable(tmp_path) -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql://nobody@127.0.0.1:9/none",
        jwt_secret="z" * 40,
        migrate_on_start=False,
    )
    with GatewayServer.running(settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("database unreachable")


async def get_query(server: GatewayServer, token: str, query: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(
            server.url, params={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )


async def test_queries_over_get(server: GatewayServer) -> None:
    response = await get_query(server, server.token("alice", Role.PATIENT), "{ me { id } }")
    assert response.json() == {"data": {"me": {"id": "alice"}}}


async def test_mutations_over_get_are_refused(server: GatewayServer) -> None:
    token = server.token("root", Role.ADMIN)
    response = await get_query(
        server, token, 'mutation { createProject(code: "x", name: "X") { code } }'
    )
    # GraphQL over HTTP: 405, and only POST may run it. Nothing runs.
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    check = await server.client(token).data('{ project(code: "x") { code } }')
    assert check == {"project": None}


async def test_graphiql_is_served_to_browsers(server: GatewayServer) -> None:
    async with httpx.AsyncClient(follow_redirects=True) as http:
        page = await http.get(server.base_url + "/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.url.path == "/graphql"
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()


async def test_graphiql_assets_are_served_locally_and_match_their_integrity_hashes(
    server: GatewayServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = (await http.get("/graphql", headers={"Accept": "text/html"})).text
        assert "unpkg.com" not in page
        assets = re.findall(r'(?:src|href)="(/graphql-assets/[^"]+)"\s+integrity="([^"]+)"', page)
        assert len(assets) >= 5, page
        for url, integrity in assets:
            response = await http.get(url)
            assert response.status_code == 200, url
            algorithm, _, expected = integrity.partition("-")
            digest = base64.b64encode(hashlib.new(algorithm, response.content).digest()).decode()
            assert digest == expected, f"{url} does not match its integrity hash"


async def test_request_errors_carry_bad_user_input(server: GatewayServer) -> None:
    client = server.client(server.token("alice", Role.PATIENT))
    unknown_field = await client.error("{ me { nickname } }")
    assert error_code(unknown_field) == "BAD_USER_INPUT"
    syntax = await client.error("{ me { id ")
    assert error_code(syntax) == "BAD_USER_INPUT"
    bad_variable = await client.error(
        "query($code: String!) { project(code: $code) { code } }", code=42
    )
    assert error_code(bad_variable) == "BAD_USER_INPUT"


async def test_introspection_needs_no_token(server: GatewayServer) -> None:
    data = await server.client().data("{ __schema { queryType { name } } }")
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_repeated_bad_requests_keep_their_codes(server: GatewayServer) -> None:
    """Parsing and validation are cached per distinct operation; errors must not lose codes."""
    client = server.client(server.token("alice", Role.PATIENT))
    for query in ("{ me { nickname } }", "{ me { id "):
        for _ in range(3):
            assert error_code(await client.error(query)) == "BAD_USER_INPUT"
    for _ in range(3):
        assert (await client.data("{ me { id } }")) == {"me": {"id": "alice"}}
