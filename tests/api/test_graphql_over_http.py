"""GraphQL over HTTP (graphql/graphql-over-http): media types by ``Accept``, status codes by
media type, and every transport refusal as a coded GraphQL error, over real sockets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from gateway.graphql.http import negotiate
from tests.support import _TLS, GatewayServer, settings_for

GR = "application/graphql-response+json"
JSON = "application/json"
CREATE = 'mutation { createProject(code: "x", name: "X") { code } }'


@pytest.fixture(scope="module")
def gateway(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """One gateway for the tests that change nothing (SQLite: no database is reached); those
    that would write use ``server``, on both databases."""
    path = tmp_path_factory.mktemp("http") / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    with GatewayServer.running(settings_for(f"sqlite+aiosqlite:///{path}")) as running:
        yield running


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GR, GR),
        (f"{GR}, {JSON}", GR),
        (f"{JSON}, {GR}", JSON),
        (f"{JSON};q=0.5, {GR}", GR),
        (f"{GR};q=0.9, {JSON}", JSON),
        (f"{GR}; charset=utf-8", GR),
        (f"{GR}; charset=latin1, {JSON}", JSON),
        (f"text/html, {GR}, */*;q=0.8", GR),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),
        ("text/html", None),
        (f"{JSON};q=0", None),
        ("image/png, */*;q=0", None),
    ],
)
def test_the_media_type_follows_accept(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


async def post(
    server: GatewayServer, body: Any = None, accept: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if accept is not None:
        headers["Accept"] = accept
    async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
        if body is not None:
            kwargs["json"] = body
        return await http.post(server.url, headers=headers, **kwargs)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def only_error(response: httpx.Response, code: str = "BAD_USER_INPUT") -> dict[str, Any]:
    assert response.headers["content-type"].endswith("charset=utf-8")
    document = response.json()
    assert "data" not in document, document
    (error,) = document["errors"]
    assert error["extensions"]["code"] == code, error
    return error


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{", None),  # does not parse
        ("{ noSuchField }", None),  # does not validate
        ("query($p: String!) { project(code: $p) { code } }", {"p": 7}),  # bad variable
        ("query($p: String!) { project(code: $p) { code } }", {}),  # missing variable
    ],
)
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    gateway: GatewayServer, query: str, variables: dict[str, Any] | None
) -> None:
    body = {"query": query, "variables": variables}
    modern = await post(gateway, body, accept=GR)
    assert (modern.status_code, media_type(modern)) == (400, GR)
    assert "data" not in modern.json()
    assert modern.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # application/json (asked for, or by default) stays 200, as before.
    for accept in (JSON, None):
        legacy = await post(gateway, body, accept=accept)
        assert (legacy.status_code, media_type(legacy)) == (200, JSON)
        assert legacy.json()["data"] is None
        assert legacy.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_field_errors_are_200_with_data_for_both_media_types(gateway: GatewayServer) -> None:
    for accept in (GR, JSON):
        response = await post(gateway, {"query": "{ me { id } }"}, accept=accept)
        assert (response.status_code, media_type(response)) == (200, accept)
        assert response.json()["data"] is None
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    token = gateway.token("alice", Role.PATIENT)
    ok = await post(
        gateway, {"query": "{ me { id } }"}, accept=GR, headers={"Authorization": f"Bearer {token}"}
    )
    assert (ok.status_code, ok.json()) == (200, {"data": {"me": {"id": "alice"}}})


async def test_accept_without_a_json_type_is_406(gateway: GatewayServer) -> None:
    response = await post(gateway, {"query": "{ __typename }"}, accept="text/html")
    assert response.status_code == 406
    assert media_type(response) == JSON
    assert "Accept" in only_error(response)["message"]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "says"),
    [
        ({"content": b'{"query": ', "headers": {"Content-Type": JSON}}, 400, "not valid JSON"),
        ({"content": b"", "headers": {"Content-Type": JSON}}, 400, "empty"),
        ({"content": b'{"query": "{ __typename }"}'}, 415, "Content-Type"),
        (
            {"content": b"{ __typename }", "headers": {"Content-Type": "application/graphql"}},
            415,
            "unsupported content type",
        ),
        (
            {
                "content": b'{"query":"{ __typename }"}',
                "headers": {"Content-Type": "application/json; charset=latin1"},
            },
            415,
            "UTF-8",
        ),
        ({"json": [{"query": "{ __typename }"}]}, 400, "batched"),
        ({"json": "{ __typename }"}, 400, "JSON object"),
        ({"json": {"qeury": "{ __typename }"}}, 400, "no 'query'"),
        ({"json": {"query": ["{ __typename }"]}}, 400, "'query' must be a string"),
        ({"json": {"query": "{ __typename }", "variables": [1]}}, 400, "'variables'"),
        ({"json": {"query": "{ __typename }", "operationName": 1}}, 400, "'operationName'"),
        ({"json": {"query": "{ __typename }", "extensions": "x"}}, 400, "'extensions'"),
        ({"json": {"query": "query A { me { id } } query B { __typename }"}}, 400, "2 operations"),
        ({"json": {"query": "query A { __typename }", "operationName": "B"}}, 400, "named 'B'"),
        ({"json": {"query": "subscription { heartbeat { seq } }"}}, 400, "WebSockets"),
    ],
)
@pytest.mark.parametrize("accept", [JSON, GR])
async def test_transport_refusals_are_coded_graphql_errors(
    gateway: GatewayServer, request_kwargs: dict[str, Any], status: int, says: str, accept: str
) -> None:
    kwargs = {**request_kwargs, "headers": {**request_kwargs.get("headers", {}), "Accept": accept}}
    async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
        response = await http.post(gateway.url, **kwargs)
    assert response.status_code == status, response.text
    assert media_type(response) == accept
    assert says in only_error(response)["message"]


async def test_several_operations_without_a_name_run_none(server: GatewayServer) -> None:
    admin = server.token("root", Role.ADMIN)
    auth = {"Authorization": f"Bearer {admin}"}
    two = 'mutation A { createProject(code: "a", name: "A") { code } } ' + CREATE.replace(
        "mutation", "mutation B"
    )
    refused = await post(server, {"query": two}, headers=auth)
    assert refused.status_code == 400
    assert "operationName" in only_error(refused)["message"]
    named = await post(server, {"query": two, "operationName": "B"}, headers=auth)
    assert named.json() == {"data": {"createProject": {"code": "x"}}}
    projects = await server.client(admin).data("{ projects { code } }")
    assert projects["projects"] == [{"code": "x"}], "only the named operation ran"


async def test_a_mutation_over_get_is_405_and_runs_nothing(server: GatewayServer) -> None:
    admin = server.token("root", Role.ADMIN)
    async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
        for accept in (JSON, GR):
            response = await http.get(
                server.url,
                params={"query": CREATE},
                headers={"Authorization": f"Bearer {admin}", "Accept": accept},
            )
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"
            assert media_type(response) == accept
            assert "POST" in only_error(response)["message"]
        query = await http.get(server.url, params={"query": "{ __typename }"})
        assert query.json() == {"data": {"__typename": "Query"}}
    assert await server.client(admin).data('{ project(code: "x") { code } }') == {"project": None}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(gateway: GatewayServer, method: str) -> None:
    async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
        response = await http.request(method, gateway.url, json={"query": CREATE})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert method in only_error(response)["message"]


async def test_get_with_bad_variables_is_400(gateway: GatewayServer) -> None:
    async with httpx.AsyncClient(timeout=10, verify=_TLS) as http:
        response = await http.get(
            gateway.url, params={"query": "{ __typename }", "variables": "{nope"}
        )
    assert response.status_code == 400
    assert "'variables'" in only_error(response)["message"]
