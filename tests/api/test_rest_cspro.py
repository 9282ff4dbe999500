"""CSPro's Data.getSyncStatus examples, replayed through ``GET /api/data/{project}/sync-status``
against the real server on both databases and compared field by field with the seed's answers
(``cspro-data-getsyncstatus.txt``). The fixture reproduces the seed's data: the CSWeb server's
puts and the Dropbox get are recorded with their times and usernames (``recordSyncEvent``),
and the cases are written with the seed's keys and uuids. Positions (log positions of this
database) and the time of a put the test itself makes are compared by type and format."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gateway.auth.principal import Role
from tests.support import GatewayServer, create_project
from tests.support.contract import assert_matches

CSWEB_ID = "588850ce-330b-4afd-8282-7603e955a7a3"
CSWEB = "https://example.org/csweb/api/"
OLD_CSWEB = "http://localhost/csweb81/api/"
RECORD = """mutation($deviceId: String!, $name: String!, $direction: SyncDirection!,
                     $time: DateTime!, $username: String) {
  recordSyncEvent(project: "survey", deviceId: $deviceId, deviceName: $name,
                  direction: $direction, time: $time, username: $username) { id }
}"""
WRITE = """mutation($actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: "survey", actions: $actions, deviceId: $deviceId) { accepted }
}"""


def ev(time: str, device_id: str, name: str, username: str, direction: str) -> dict[str, Any]:
    return {
        "time": time, "deviceId": device_id, "deviceName": name, "username": username,
        "universe": "", "direction": direction, "partial": False,
    }  # fmt: skip


PUT_0609 = ev("2026-06-09T15:27:03Z", CSWEB_ID, CSWEB, "jackw", "put")
PUT_0608 = ev("2026-06-08T19:38:18Z", CSWEB_ID, CSWEB, "jackw", "put")
GET_0603 = ev("2026-06-03T18:34:25Z", "Dropbox", "Dropbox", "jackw@example.org", "get")
PENDING = [
    {"key": "4480489263555", "position": 609, "uuid": "38ed23c6-1967-465a-8011-00287bc9792b"},
    {"key": "4480489263333", "position": 3, "uuid": "48e6b01e-734b-4cdb-b30d-fbcd2ea104e3"},
    {"key": "4480489263666", "position": 1249, "uuid": "49720a7c-945c-49e5-b888-12dfde1810ff"},
]
SYNCED = {"key": "4480586623555", "position": 205, "uuid": "73354b1b-f7c0-48f2-8943-538e77a61e7b"}


def case_action(case: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "table": "households", "user": "jackw", "action": "INSERT",
        "recordId": case["uuid"].replace("-", ""), "time": 1_780_000_000_000 + n, "order": 0,
        "jsonData": json.dumps({"hhkey": case["key"]}),
    }  # fmt: skip


async def survey(server: GatewayServer, *, old_name: bool = False) -> httpx.AsyncClient:
    """The seed's data source, as jackw: the Dropbox get and the CSWeb puts (first under the
    server's old URL when ``old_name``), and three cases no service has received."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "survey", "Survey")
    await admin.data(
        'mutation { defineTable(project: "survey", name: "households", keyField: "hhkey", '
        'fields: [{name: "hhkey", type: STRING, required: true}]) { name } }'
    )
    jackw = server.client(server.token("jackw", Role.PATIENT))
    events = [
        (CSWEB_ID, OLD_CSWEB, "PUT", "2026-05-05T08:27:03Z", None),
        ("Dropbox", "Dropbox", "GET", GET_0603["time"], "jackw@example.org"),
        (CSWEB_ID, CSWEB, "PUT", PUT_0608["time"], None),
        (CSWEB_ID, CSWEB, "PUT", PUT_0609["time"], None),
    ]
    for device_id, name, direction, time, username in events[0 if old_name else 1 :]:
        await jackw.data(
            RECORD, deviceId=device_id, name=name, direction=direction, time=time, username=username
        )
    await jackw.data(WRITE, actions=[case_action(c, n) for n, c in enumerate(PENDING)])
    token = server.token("jackw", Role.PATIENT)
    return httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})


async def get(http: httpx.AsyncClient, status: int = 200, **params: str) -> Any:
    response = await http.get("/api/data/survey/sync-status", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_every_example_of_the_seed(server: GatewayServer) -> None:
    async with await survey(server) as http:
        assert_matches(
            await get(http, content="summary"), {"lastPut": PUT_0609, "lastGet": GET_0603}
        )
        assert_matches(
            await get(http, content="summary", deviceName=CSWEB),
            {"lastPut": PUT_0609, "casesPendingSync": 3},
        )
        assert_matches(
            await get(http, content="syncHistory"),
            {
                "syncHistory": [PUT_0609, PUT_0608, GET_0603],
                "lastGet": GET_0603,
                "lastPut": PUT_0609,
            },
        )
        loose = {"[].position", "position"}
        assert_matches(
            await get(http, content="casesPendingSync", deviceName=CSWEB), PENDING, loose=loose
        )
        assert_matches(
            await get(http, content="caseStatus", deviceName=CSWEB, key="4480489263666"),
            {**PENDING[2], "syncHistory": []},
            loose=loose,
        )
        # The synchronized case: put by the CSWeb service itself, so its current version
        # reached it in that put (made now, so its time is compared by format).
        jackw = server.client(server.token("jackw", Role.PATIENT))
        await jackw.data(WRITE, actions=[case_action(SYNCED, 9)], deviceId=CSWEB_ID)
        assert_matches(
            await get(http, content="caseStatus", deviceName=CSWEB, key=SYNCED["key"]),
            {**SYNCED, "syncHistory": [PUT_0609]},
            loose=loose | {"syncHistory[].time"},
        )


async def test_sync_services_list_every_name_newest_first(server: GatewayServer) -> None:
    async with await survey(server, old_name=True) as http:
        assert_matches(
            await get(http, content="syncServices"),
            [
                {
                    "deviceId": CSWEB_ID,
                    "deviceNames": [CSWEB, OLD_CSWEB],
                    "firstSyncTime": "2026-05-05T08:27:03Z",
                    "lastSyncTime": "2026-06-09T15:27:03Z",
                },
                {
                    "deviceId": "Dropbox",
                    "deviceNames": ["Dropbox"],
                    "firstSyncTime": "2026-06-03T18:34:25Z",
                    "lastSyncTime": "2026-06-03T18:34:25Z",
                },
            ],
        )


async def test_bad_requests_are_client_errors_that_name_the_problem(
    server: GatewayServer,
) -> None:
    async with await survey(server) as http:
        assert (await get(http, 400, content="everything"))["code"] == "BAD_USER_INPUT"
        assert (await get(http, 400, content="casesPendingSync"))["field"] == "deviceName"
        missing = await get(http, 404, content="caseStatus", deviceName=CSWEB, key="nope")
        assert missing["code"] == "NOT_FOUND"
        unknown = await http.get("/api/data/nope/sync-status")
        assert unknown.status_code == 404
        anonymous = await httpx.AsyncClient(base_url=server.base_url).get(
            "/api/data/survey/sync-status"
        )
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
