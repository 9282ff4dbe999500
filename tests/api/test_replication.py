"""pullRecords and pushRecords over HTTP, as RxDB's replication sends them, on both databases:
the round trip of a conflict, and bad input refused with its code, changing nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from gateway.db import Database
from tests.api.test_bad_input import row_counts
from tests.support import _TLS, GatewayServer, GraphQLHttp, error_code
from tests.support.live import make_project, write_notes

PULL = """query($checkpoint: RecordCheckpointInput, $limit: Int!, $user: String) {
  pullRecords(project: "live", table: "notes", checkpoint: $checkpoint, limit: $limit,
              user: $user) { documents checkpoint { cursor } resync } }"""
PUSH = """mutation($rows: [RecordPushRow!]!, $user: String) {
  pushRecords(project: "live", table: "notes", rows: $rows, user: $user, deviceId: "rx") }"""


def rid(n: int) -> str:
    return f"{n:032x}"


def doc(n: int, **fields: Any) -> dict[str, Any]:
    return {"id": rid(n), "_deleted": False, **fields}


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    await make_project(server)
    client = server.client(server.token("alice", Role.PATIENT))
    await client.data("{ me { id } }")  # users are created on first sight
    return client


async def test_a_conflict_round_trip(server: GatewayServer, alice: GraphQLHttp) -> None:
    await write_notes(alice, range(3))  # from alice's phone: {"text": "#n"}
    page = (await alice.data(PULL, limit=2))["pullRecords"]
    assert page["documents"] == [doc(0, text="#0"), doc(1, text="#1")] and not page["resync"]
    page = (await alice.data(PULL, limit=2, checkpoint=page["checkpoint"]))["pullRecords"]
    assert page["documents"] == [doc(2, text="#2")]

    # RxDB pushes an edit of #1 (as it last pulled it) and a new note: both fit.
    rows = [
        {"assumedMasterState": doc(1, text="#1"), "newDocumentState": doc(1, text="edited")},
        {"assumedMasterState": None, "newDocumentState": doc(9, text="new")},
    ]
    assert (await alice.data(PUSH, rows=rows))["pushRecords"] == []
    # The same push again assumes a state that is gone: the current documents come back.
    assert (await alice.data(PUSH, rows=rows))["pushRecords"] == [
        doc(1, text="edited"),
        doc(9, text="new"),
    ]
    page = (await alice.data(PULL, limit=10, checkpoint=page["checkpoint"]))["pullRecords"]
    assert page["documents"] == [doc(1, text="edited"), doc(9, text="new")]

    # Pushes are actions like any device's: they show in the records and the log.
    records = await alice.data(
        '{ records(project: "live", table: "notes") { edges { node { recordId data } } } }'
    )
    assert {e["node"]["recordId"]: e["node"]["data"] for e in records["records"]["edges"]} == {
        rid(0): {"text": "#0"},
        rid(1): {"text": "edited"},
        rid(2): {"text": "#2"},
        rid(9): {"text": "new"},
    }


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "a limit of 0": (PULL, {"limit": 0}, "BAD_USER_INPUT"),
    "a limit over GATEWAY_MAX_READ_BATCH": (PULL, {"limit": 1001}, "LIMIT_EXCEEDED"),
    "a checkpoint not the gateway's": (
        PULL,
        {"limit": 5, "checkpoint": {"cursor": "bm9wZQ"}},
        "BAD_USER_INPUT",
    ),
    "another user's table": (PULL, {"limit": 5, "user": "bob"}, "FORBIDDEN"),
    "a push to another user's table": (
        PUSH,
        {"rows": [{"newDocumentState": doc(1, text="x")}], "user": "bob"},
        "FORBIDDEN",
    ),
    "a document that is not an object": (
        PUSH,
        {"rows": [{"newDocumentState": [1]}]},
        "BAD_USER_INPUT",
    ),
    "a document without id": (
        PUSH,
        {"rows": [{"newDocumentState": {"text": "x"}}]},
        "BAD_USER_INPUT",
    ),
    "an id in upper case": (
        PUSH,
        {"rows": [{"newDocumentState": doc(0xABC, text="x") | {"id": rid(0xABC).upper()}}]},
        "BAD_USER_INPUT",
    ),
    "a field of the wrong type, beside a good document": (
        PUSH,
        {"rows": [{"newDocumentState": doc(1, text="fine")}, {"newDocumentState": doc(2, text=5)}]},
        "VALIDATION_FAILED",
    ),
    "a field the table does not declare": (
        PUSH,
        {"rows": [{"newDocumentState": doc(1, text="x", color="red")}]},
        "VALIDATION_FAILED",
    ),
    "a document nested 500 deep": (
        PUSH,
        {"rows": [{"newDocumentState": doc(1, text=deep(500))}]},
        "LIMIT_EXCEEDED",
    ),
    "NUL in a document": (
        PUSH,
        {"rows": [{"newDocumentState": doc(1, text="a\0b")}]},
        "BAD_USER_INPUT",
    ),
}


async def test_bad_input_is_coded_and_changes_nothing(
    server: GatewayServer, alice: GraphQLHttp, db: Database
) -> None:
    """Every case on one gateway (a server per case would cost seconds each)."""
    wrong = []
    for name, (query, variables, code) in CASES.items():
        before = await row_counts(db)
        headers = alice.headers | {"Content-Type": "application/json"}
        body = json.dumps({"query": query, "variables": variables})
        async with httpx.AsyncClient(timeout=30, verify=_TLS) as http:
            response = await http.post(server.url, content=body, headers=headers)
        assert response.status_code < 500, response.text
        errors = response.json().get("errors") or []
        if [error_code(e) for e in errors] != [code]:
            wrong.append(f"{name}: expected {code}, got {errors}")
        elif code == "VALIDATION_FAILED":  # told by the row it came from
            invalid = errors[0]["extensions"]["invalidDocuments"]
            assert [p["index"] for p in invalid] == [len(variables["rows"]) - 1], name
        assert await row_counts(db) == before, name
    assert not wrong, "\n".join(wrong)
