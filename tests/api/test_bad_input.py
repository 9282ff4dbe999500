"""Bad input of every kind a hostile client tried gets a coded error and changes nothing, on
both databases: every table holds exactly the rows it held before.

Each case is one request as a client sends it (over real HTTP to the real gateway) and the code
it must get. Transport-level cases (bodies that are not JSON) are in test_graphql_over_http.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import metadata
from tests.support import _TLS, TEST_SECRET, GatewayServer, error_code
from tests.support.live import WRITE, make_project

BIG = 2**63
READ = """query($progress: [ProgressInput!], $deviceId: String, $maxCount: Int! = 0) {
  actions(project: "live", progress: $progress, deviceId: $deviceId, maxCount: $maxCount) {
    hasMore } }"""
RECORDS = """query($after: String) { records(project: "live", table: "notes", after: $after) {
  edges { cursor } } }"""
REPORT = """mutation($d: String!, $name: String, $type: String, $version: String) {
  reportDevice(project: "live", deviceId: $d, name: $name, type: $type, version: $version) {
    deviceId } }"""
START = """mutation($t: DateTime!) {
  startSyncRun(syncId: 1, scheduledExecutionTime: $t) { id } }"""


def note(**overrides: Any) -> dict[str, Any]:
    return {
        "table": "notes", "user": "alice", "action": "INSERT", "recordId": "a" * 32,
        "time": 1_700_000_000_000, "order": 0, "jsonData": json.dumps({"text": "hi"}),
    } | overrides  # fmt: skip


def cursor(*parts: object) -> str:
    raw = ":".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def token(claims: dict[str, Any]) -> str:
    return jwt.encode({"role": "patient", "exp": 2_000_000_000} | claims, TEST_SECRET, "HS256")


@dataclass(frozen=True)
class Case:
    query: str
    variables: dict[str, Any]
    code: str
    bearer: str | None = None  # a token of its own instead of alice's


CASES: dict[str, Case] = {
    "jsonData nested 5,000 deep": Case(
        WRITE,
        {"actions": [note(jsonData='{"text": ' + "[" * 5000 + "]" * 5000 + "}")]},
        "LIMIT_EXCEEDED",
    ),
    "jsonData over the record size": Case(
        WRITE,
        {"actions": [note(jsonData=json.dumps({"text": "x" * 300_000}))]},
        "LIMIT_EXCEEDED",
    ),
    "NUL inside jsonData": Case(
        WRITE, {"actions": [note(jsonData='{"text": "a\\u0000b"}')]}, "VALIDATION_FAILED"
    ),
    "a lone surrogate inside jsonData": Case(
        WRITE, {"actions": [note(jsonData='{"text": "\\ud800"}')]}, "VALIDATION_FAILED"
    ),
    "source over 32 characters": Case(
        WRITE, {"actions": [note(source="s" * 33)]}, "VALIDATION_FAILED"
    ),
    "author over 255 characters": Case(
        WRITE, {"actions": [note(author="a" * 256)]}, "VALIDATION_FAILED"
    ),
    "user over 255 characters": Case(
        WRITE, {"actions": [note(user="u" * 256)], "user": "u" * 256}, "FORBIDDEN"
    ),
    "deviceId over 255 characters": Case(
        WRITE, {"actions": [note()], "deviceId": "d" * 256}, "BAD_USER_INPUT"
    ),
    "a NUL in a string variable": Case(
        WRITE, {"actions": [note()], "deviceId": "ta\x00b"}, "BAD_USER_INPUT"
    ),
    "a lone surrogate in a string variable": Case(
        WRITE, {"actions": [note(author="\ud800")]}, "BAD_USER_INPUT"
    ),
    "a NUL in a string literal": Case(
        'mutation { reportDevice(project: "live", deviceId: "a\\u0000b") { deviceId } }',
        {},
        "BAD_USER_INPUT",
    ),
    "a progress cursor past 64 bits": Case(
        READ,
        {"progress": [{"table": "notes", "cursor": cursor(1, BIG, 1, "", "")}]},
        "BAD_USER_INPUT",
    ),
    "a progress time past 64 bits": Case(
        READ,
        {"progress": [{"table": "notes", "cursor": cursor(1, 0, 1, BIG, 0)}]},
        "BAD_USER_INPUT",
    ),
    "a Relay cursor past 64 bits": Case(RECORDS, {"after": cursor("r", BIG)}, "BAD_USER_INPUT"),
    "a negative maxCount": Case(READ, {"maxCount": -1}, "BAD_USER_INPUT"),
    "a device type over 100 characters": Case(
        REPORT, {"d": "tab", "type": "t" * 101}, "BAD_USER_INPUT"
    ),
    "a device version over 100 characters": Case(
        REPORT, {"d": "tab", "version": "v" * 101}, "BAD_USER_INPUT"
    ),
    "a device name with a control character": Case(
        REPORT, {"d": "tab", "name": "a\x07b"}, "BAD_USER_INPUT"
    ),
    "a scheduled time just after year 1 east of UTC": Case(
        START, {"t": "0001-01-01T00:30:00+05:00"}, "BAD_USER_INPUT"
    ),
    "a scheduled time just before year 10000 west of UTC": Case(
        START, {"t": "9999-12-31T23:30:00-05:00"}, "BAD_USER_INPUT"
    ),
    "a paged field without arguments": Case(  # graphql-core leaves their list None
        "{ actions { hasMore } }", {}, "BAD_USER_INPUT"
    ),
    "a subscription sent over POST": Case(
        "subscription { heartbeat { seq } }", {}, "BAD_USER_INPUT"
    ),
    "a token expiring in year 3e12": Case(
        "{ me { id } }", {}, "UNAUTHENTICATED", bearer=token({"sub": "alice", "exp": 1e20})
    ),
    "a token whose user id has 300 characters": Case(
        "{ me { id } }", {}, "UNAUTHENTICATED", bearer=token({"sub": "u" * 300})
    ),
    "a token whose user id has a NUL": Case(
        "{ me { id } }", {}, "UNAUTHENTICATED", bearer=token({"sub": "a\x00b"})
    ),
}


async def row_counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        return {
            table.name: await session.scalar(select(func.count()).select_from(table)) or 0
            for table in metadata.sorted_tables
        }


Send = Callable[[Case], Awaitable[dict[str, Any]]]


@pytest.fixture
async def send(server: GatewayServer) -> Send:
    await make_project(server)
    alice = server.token("alice", Role.PATIENT)
    admin = server.client(server.token("root", Role.ADMIN))
    await admin.data('mutation { createSync(project: "live", name: "job", user: "alice") { id } }')
    await server.client(alice).data("{ me { id } }")

    async def post(case: Case) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {case.bearer or alice}",
            "Content-Type": "application/json",
        }
        # json.dumps escapes lone surrogates ("\ud800"), as JavaScript clients send them
        body = json.dumps({"query": case.query, "variables": case.variables})
        async with httpx.AsyncClient(timeout=30, verify=_TLS) as http:
            response = await http.post(server.url, content=body, headers=headers)
        assert response.status_code < 500, response.text
        return response.json()

    return post


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_input_is_refused_with_its_code_and_changes_nothing(
    name: str, send: Send, db: Database
) -> None:
    case = CASES[name]
    before = await row_counts(db)
    body = await send(case)
    assert body.get("errors"), body
    assert [error_code(e) for e in body["errors"]] == [case.code], body["errors"]
    assert await row_counts(db) == before


async def test_reported_counts_add_up_beyond_32_bits(server: GatewayServer) -> None:
    """Two devices each reporting the most an Int holds: the report sums them as a Long."""
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    most = 2**31 - 1
    for device in ("phone", "tab"):
        await alice.data(
            'mutation($d: String!, $n: Int!) { reportDevice(project: "live", deviceId: $d, '
            "pendingUp: $n) { pendingUp } }",
            d=device,
            n=most,
        )
    report = await alice.data(
        '{ syncStatus(project: "live") { pendingSyncs dataSummary { unsyncedActions } } }'
    )
    assert report["syncStatus"]["pendingSyncs"] == 2 * most
    assert report["syncStatus"]["dataSummary"]["unsyncedActions"] == 2 * most
    over = await alice.execute(
        'mutation { reportDevice(project: "live", deviceId: "tab", pendingUp: 2147483648) '
        "{ pendingUp } }"
    )
    assert error_code(over["errors"][0]) == "BAD_USER_INPUT"
