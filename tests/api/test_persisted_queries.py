"""Persisted operations (gateway/graphql/persisted.py): Apollo's automatic persisted queries over
GET, POST and WebSockets, and the trusted-documents allowlist, against a real gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from gateway.auth.principal import Role
from gateway.graphql.persisted import PersistedQueries, TrustedDocumentsError, load_manifest
from gateway.settings import SettingsError
from tests.support import _TLS, GatewayServer, settings_for

ME = "query Me { me { id } }"
HEARTBEAT = "subscription { heartbeat(intervalMs: 100, count: 1) { seq user } }"
GR = "application/graphql-response+json"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}


def code(body: dict[str, Any]) -> str:
    return body["errors"][0]["extensions"]["code"]


def http(server: GatewayServer, role: Role = Role.ADMIN) -> httpx.AsyncClient:
    token = server.token("root", role)
    headers = {"Authorization": f"Bearer {token}", "Accept": GR}
    return httpx.AsyncClient(headers=headers, timeout=30, verify=_TLS)


async def test_a_hash_alone_is_not_found_until_sent_with_its_query(server: GatewayServer) -> None:
    async with http(server) as client:
        unknown = await client.post(server.url, json={"extensions": persisted(ME)})
        # Apollo's link retries with the query on this code (or this message).
        assert unknown.status_code == 200
        assert unknown.headers["cache-control"] == "no-store"
        assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        assert code(unknown.json()) == "PERSISTED_QUERY_NOT_FOUND"
        assert "data" not in unknown.json()

        registered = await client.post(server.url, json={"query": ME, "extensions": persisted(ME)})
        assert registered.json() == {"data": {"me": {"id": "root"}}}
        # From now on the hash is enough, over POST and over GET (cacheable URLs).
        by_post = await client.post(server.url, json={"extensions": persisted(ME)})
        assert by_post.json() == {"data": {"me": {"id": "root"}}}
        by_get = await client.get(
            server.url, params={"extensions": json.dumps(persisted(ME)), "operationName": "Me"}
        )
        assert by_get.json() == {"data": {"me": {"id": "root"}}}

    view = next(r.endpoint for r in server.app.routes if getattr(r, "path", "") == "/graphql")
    # The stored document runs on the fast path like any document sent in full.
    assert view.schema.quick._plans.get((ME, "Me", False)) is not None


async def test_a_hash_that_is_not_the_querys_is_refused_and_not_stored(
    server: GatewayServer,
) -> None:
    other = "{ __typename }"
    async with http(server) as client:
        wrong = await client.post(server.url, json={"query": other, "extensions": persisted(ME)})
        assert wrong.status_code == 400
        assert code(wrong.json()) == "BAD_USER_INPUT"
        assert "sha256Hash" in wrong.json()["errors"][0]["message"]
        after = await client.post(server.url, json={"extensions": persisted(ME)})
        assert code(after.json()) == "PERSISTED_QUERY_NOT_FOUND", "the wrong pair was not kept"


@pytest.mark.parametrize(
    ("extensions", "problem"),
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "version 1"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}, "SHA-256"),
        ({"persistedQuery": "abc"}, "must be an object"),
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_user_input(
    server: GatewayServer, extensions: dict[str, Any], problem: str
) -> None:
    async with http(server) as client:
        refused = await client.post(server.url, json={"extensions": extensions})
    assert refused.status_code == 400
    assert code(refused.json()) == "BAD_USER_INPUT"
    assert problem in refused.json()["errors"][0]["message"]


async def test_a_stored_mutation_still_needs_post(server: GatewayServer) -> None:
    create = 'mutation { createProject(code: "pq", name: "PQ") { code } }'
    async with http(server) as client:
        done = await client.post(
            server.url, json={"query": create, "extensions": persisted(create)}
        )
        assert done.json() == {"data": {"createProject": {"code": "pq"}}}
        by_get = await client.get(server.url, params={"extensions": json.dumps(persisted(create))})
    assert by_get.status_code == 405
    assert code(by_get.json()) == "BAD_USER_INPUT"


async def subscribe(ws: Any, op_id: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of one graphql-transport-ws operation, up to its end."""
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    messages = []
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            messages.append(message)
            if message["type"] in ("complete", "error"):
                return messages


async def test_subscriptions_by_hash_over_websockets(server: GatewayServer) -> None:
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        unknown = await subscribe(ws, "1", {"extensions": persisted(HEARTBEAT)})
        assert [m["type"] for m in unknown] == ["error"]
        assert unknown[0]["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

        full = await subscribe(ws, "2", {"query": HEARTBEAT, "extensions": persisted(HEARTBEAT)})
        by_hash = await subscribe(ws, "3", {"extensions": persisted(HEARTBEAT)})
    beat = {"heartbeat": {"seq": 1, "user": "alice"}}
    assert [m.get("payload") for m in full] == [{"data": beat}, None]
    assert [m.get("payload") for m in by_hash] == [{"data": beat}, None]


def test_unit_stored_documents_stay_within_their_byte_budget() -> None:
    store = PersistedQueries(max_bytes=1_000)
    documents = [f"{{ a{n}: __typename }}" + " " * 300 for n in range(5)]
    for document in documents:
        assert store.resolve(document, persisted(document)) == document
    assert 0 < store.stored < 5
    # The most recently used ones are kept; the oldest went first.
    assert store.resolve(None, persisted(documents[-1])) == documents[-1]
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        store.resolve(None, persisted(documents[0]))


# Trusted documents: only the manifest's operations run.

LISTED = "query Listed { me { id } }"
ALSO_LISTED = "query AlsoListed { me { role } }"


@pytest.fixture
def apollo_manifest(tmp_path: Path) -> Path:
    path = tmp_path / "persisted-query-manifest.json"
    operations = [
        {"id": sha(LISTED), "name": "Listed", "type": "query", "body": LISTED},
        {"id": sha(ALSO_LISTED), "name": "AlsoListed", "type": "query", "body": ALSO_LISTED},
    ]
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    path.write_text(json.dumps(manifest))
    return path


def test_unit_manifests_of_codegen_and_apollo_read_alike(
    apollo_manifest: Path, tmp_path: Path
) -> None:
    codegen = tmp_path / "persisted-documents.json"
    codegen.write_text(json.dumps({sha(LISTED): LISTED, f"sha256:{sha(ALSO_LISTED)}": ALSO_LISTED}))
    assert load_manifest(codegen) == load_manifest(apollo_manifest)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"not-a-hash": LISTED}))
    with pytest.raises(TrustedDocumentsError):
        load_manifest(bad)
    assert issubclass(TrustedDocumentsError, SettingsError)  # `gateway serve` refuses to start


async def test_trusted_documents_run_only_listed_operations(
    migrated_url: str, apollo_manifest: Path
) -> None:
    settings = settings_for(migrated_url, trusted_documents=str(apollo_manifest))
    with GatewayServer.running(settings) as server:
        async with http(server) as client:

            async def post(body: dict[str, Any]) -> httpx.Response:
                return await client.post(server.url, json=body)

            assert (await post({"extensions": persisted(LISTED)})).json() == {
                "data": {"me": {"id": "root"}}
            }
            assert (await post({"documentId": f"sha256:{sha(ALSO_LISTED)}"})).json() == {
                "data": {"me": {"role": "ADMIN"}}
            }
            assert (await post({"query": LISTED})).json() == {"data": {"me": {"id": "root"}}}
            unlisted = "{ me { id role } }"
            for body in (
                {"query": unlisted},
                {"query": unlisted, "extensions": persisted(unlisted)},  # no registration
                {"extensions": persisted(unlisted)},
                {"query": unlisted, "extensions": persisted(LISTED)},  # a listed hash, other text
            ):
                refused = await post(body)
                assert refused.status_code == 403, body
                assert code(refused.json()) == "FORBIDDEN", body
                assert "GATEWAY_TRUSTED_DOCUMENTS" in refused.json()["errors"][0]["message"]
        # Over WebSockets too.
        token = server.token("alice", Role.PATIENT)
        async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            refused_live = await subscribe(ws, "1", {"query": HEARTBEAT})
        assert [m["type"] for m in refused_live] == ["error"]
        assert refused_live[0]["payload"][0]["extensions"]["code"] == "FORBIDDEN"
