"""Errors are masked the same way on every transport: HTTP, graphql-transport-ws and the legacy
graphql-ws. A coded error keeps its code and message; anything unexpected is
INTERNAL_SERVER_ERROR with a generic message (no SQL, no parameters); a request that does not
validate is BAD_USER_INPUT.

The unexpected failure is real: a table the query needs is dropped under the running gateway
(in a database of the test's own, not the migrated one the other tests share).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from sqlalchemy import text

from gateway.auth.principal import Role
from gateway.db import Database
from tests.support import GatewayServer, error_code, settings_for
from tests.support.live import make_project

TRANSPORT_WS, LEGACY_WS = "graphql-transport-ws", "graphql-ws"
SERVICES = '{ syncServices(project: "live") { deviceId } }'
ACTIONS = 'subscription { databaseActions(project: "live") { actions { recordId } } }'
MISSING = 'subscription { databaseActions(project: "ghost") { actions { recordId } } }'
INVALID = 'subscription { databaseActions(project: "live") { noSuchField } }'


async def ws_errors(
    server: GatewayServer, protocol: str, query: str, **variables: Any
) -> list[dict[str, Any]]:
    """The errors the gateway sends for one operation over a raw WebSocket of ``protocol``."""
    token = server.token("alice", Role.PATIENT)
    async with websockets.connect(server.ws_url, subprotocols=[protocol]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        start = "subscribe" if protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"type": start, "id": "1", "payload": payload}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["type"] == "ka":  # the legacy protocol's keep-alive
                continue
            if message["type"] == "error":
                payload = message["payload"]
                return payload if isinstance(payload, list) else [payload]
            if message["type"] in ("next", "data") and message["payload"].get("errors"):
                return message["payload"]["errors"]
            raise AssertionError(f"expected errors, got {message}")


async def drop(db: Database, table: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {table}"))


def assert_masked(errors: list[dict[str, Any]], *leaks: str) -> None:
    assert [error_code(e) for e in errors] == ["INTERNAL_SERVER_ERROR"]
    assert errors[0]["message"] == "Unexpected error."
    body = json.dumps(errors)
    for leak in leaks:
        assert leak not in body


@pytest.fixture
async def broken(database_url: str) -> AsyncIterator[GatewayServer]:
    """A gateway on a database of its own, with a project; then the tables of sync events and
    of the log are dropped underneath."""
    with GatewayServer.running(settings_for(database_url)) as server:
        await make_project(server)
        alice = server.client(server.token("alice", Role.PATIENT))
        assert (await alice.data(SERVICES))["syncServices"] == []
        db = Database(database_url)
        try:
            await drop(db, "sync_events")
            await drop(db, "actions")
        finally:
            await db.dispose()
        yield server


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_unexpected_errors_are_masked_over_websockets(
    broken: GatewayServer, protocol: str
) -> None:
    # a subscription whose stream fails while reading the log
    assert_masked(await ws_errors(broken, protocol, ACTIONS), "actions", "SELECT")


async def test_unexpected_errors_of_queries_are_masked_over_websockets(
    broken: GatewayServer,
) -> None:
    # graphql-transport-ws runs queries too (the legacy protocol only subscriptions)
    assert_masked(await ws_errors(broken, TRANSPORT_WS, SERVICES), "sync_events", "SELECT")


async def test_unexpected_errors_are_masked_over_http_and_logged_in_full(
    broken: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = broken.client(broken.token("alice", Role.PATIENT))
    with caplog.at_level(logging.ERROR, logger="gateway.graphql"):
        body = await alice.execute(SERVICES)
    assert_masked(body["errors"], "sync_events", "SELECT")
    logged = [r for r in caplog.records if r.name == "gateway.graphql" and r.exc_info]
    assert logged and "sync_events" in str(logged[0].exc_info[1])  # type: ignore[index]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_coded_and_invalid_requests_keep_their_code_over_websockets(
    server: GatewayServer, protocol: str
) -> None:
    await make_project(server)
    missing = await ws_errors(server, protocol, MISSING)
    assert [error_code(e) for e in missing] == ["NOT_FOUND"]
    assert "ghost" in missing[0]["message"]
    invalid = await ws_errors(server, protocol, INVALID)
    assert [error_code(e) for e in invalid] == ["BAD_USER_INPUT"]
    assert "noSuchField" in invalid[0]["message"]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_device_id_with_a_nul_is_bad_input_not_a_database_error(
    server: GatewayServer, protocol: str
) -> None:
    """PostgreSQL refuses NUL in text: the gateway refuses it first, with its code."""
    await make_project(server)
    query = (
        'subscription($d: String) { databaseActions(project: "live", deviceId: $d) '
        "{ actions { recordId } } }"
    )
    errors = await ws_errors(server, protocol, query, d="tab\u0000let")
    assert [error_code(e) for e in errors] == ["BAD_USER_INPUT"]
    assert "NUL" in errors[0]["message"]
