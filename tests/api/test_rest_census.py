"""Census's list-sync-runs example, replayed through ``GET /api/v1/syncs/{sync_id}/sync_runs``
against the real server on both databases and compared field by field with the seed's answer
(``census-list-sync-runs.txt``); and its basic auth where a deployment enables it.

The fixture is the seed's run: a manual full sync whose completion carries an error code, with
the seed's counters, on page 2 of 3. Ids, times and totals come from this database and are
compared by type and format. The seed's run is ``completed`` yet shows ``current_step``, which
its own documentation says is only "available if the sync is not completed": the gateway
clears it on completion, so it is null here."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, GraphQLHttp, settings_for
from tests.support.contract import assert_matches
from tests.support.live import make_project

SEED = {
    "status": "success",
    "pagination": {
        "total_records": 14, "per_page": 25, "prev_page": 1, "page": 2, "next_page": 3,
        "last_page": 10,
    },
    "data": [{
        "id": 94,
        "created_at": "2021-10-20T02:51:07.546Z",
        "updated_at": "2021-10-20T02:52:29.236Z",
        "completed_at": "2021-10-20T02:52:29.234Z",
        "error_code": "JSON_ARRAY_ERROR",
        "error_message": "The array field being used does not appear to be valid JSON...",
        "error_detail": 'Please make sure the field "custom_field:Users" with value "jim" is '
        "formatted as a JSON Array...",
        "status": "completed",
        "sync_id": 52,
        "source_record_count": 15, "records_failed": 1, "source_record_updates": 12,
        "source_record_deletes": 2, "source_record_invalids": 1, "records_invalid": 1,
        "records_processed": 14, "records_updated": 13,
        "scheduled_execution_time": "2021-10-20T02:52:29.234Z",
        "full_sync": True,
        "sync_trigger_reason": {
            "ui_tag": "Manual", "ui_detail": "Manually triggered by test@getcensus.com",
        },
        "canceled": False,
        "current_step": None,  # the seed's "Running Sync": see the module's docstring
    }],
}  # fmt: skip
LOOSE = {
    "pagination.total_records", "pagination.per_page", "pagination.last_page",
    "data[].id", "data[].sync_id", "data[].created_at", "data[].updated_at",
    "data[].completed_at", "data[].scheduled_execution_time",
}  # fmt: skip
COUNTERS = {
    "sourceRecordCount": 15, "recordsFailed": 1, "sourceRecordUpdates": 12,
    "sourceRecordDeletes": 2, "sourceRecordInvalids": 1, "recordsInvalid": 1,
    "recordsProcessed": 14, "recordsUpdated": 13,
}  # fmt: skip
START = """mutation($syncId: Int!, $at: DateTime) {
  startSyncRun(syncId: $syncId, fullSync: true, scheduledExecutionTime: $at,
    syncTriggerReason: {uiTag: "Manual", uiDetail: "Manually triggered by test@getcensus.com"})
  { id }
}"""
COMPLETE = """mutation($id: Int!, $counters: SyncRunCounters, $code: String, $message: String,
                     $detail: String) {
  completeSyncRun(id: $id, counters: $counters, errorCode: $code, errorMessage: $message,
                  errorDetail: $detail) { status currentStep errorCode }
}"""


async def seed_runs(server: GatewayServer) -> int:
    """Three runs of one sync of alice's; the seed's is the middle one. Its sync's id."""
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    sync_id = (await alice.data('mutation { createSync(project: "live", name: "census") { id } }'))[
        "createSync"
    ]["id"]
    for n in range(3):
        at = "2021-10-20T02:52:29.234Z" if n == 1 else None
        run_id = (await alice.data(START, syncId=sync_id, at=at))["startSyncRun"]["id"]
        await alice.data(
            'mutation($id: Int!) { updateSyncRun(id: $id, currentStep: "Running Sync") { id } }',
            id=run_id,
        )
        extra: dict[str, Any] = {}
        if n == 1:
            run = SEED["data"][0]
            extra = dict(
                counters=COUNTERS,
                code=run["error_code"],
                message=run["error_message"],
                detail=run["error_detail"],
            )
        done = (await alice.data(COMPLETE, id=run_id, **extra))["completeSyncRun"]
        assert done["status"] == "COMPLETED" and done["currentStep"] is None
    return int(sync_id)


async def list_runs(http: httpx.AsyncClient, sync_id: int | str, **params: Any) -> httpx.Response:
    response = await http.get(f"/api/v1/syncs/{sync_id}/sync_runs", params=params)
    assert response.headers["content-type"] == "application/json"
    return response


async def test_the_seed_example(server: GatewayServer) -> None:
    sync_id = await seed_runs(server)
    token = server.token("alice", Role.PATIENT)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as http:
        response = await list_runs(http, sync_id, page=2, per_page=1, order="desc")
        assert response.status_code == 200, response.text
        assert_matches(response.json(), SEED, loose=LOOSE)
        oldest = (await list_runs(http, sync_id, page=0, per_page=100, order="asc")).json()
        assert oldest["pagination"]["page"] == 1
        ids = [r["id"] for r in oldest["data"]]
        assert ids == sorted(ids) and len(ids) == 3
        for status, params in (
            (400, {"per_page": 101}),
            (400, {"order": "sideways"}),
            (400, {"page": "two"}),
        ):
            refused = await list_runs(http, sync_id, **params)
            assert refused.status_code == status
            assert refused.json()["status"] == "error"
            assert refused.json()["code"] == "BAD_USER_INPUT"
        missing = await list_runs(http, 999_999)
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    bob = {"Authorization": f"Bearer {server.token('bob', Role.PATIENT)}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=bob) as http:
        assert (await list_runs(http, sync_id)).status_code == 404  # not his: as if none


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@pytest.fixture
def basic_settings(migrated_url: str, tmp_path: Path) -> Settings:
    users = tmp_path / "census-users"
    digest = hashlib.sha256(b"s3cret").hexdigest()
    pbkdf2 = hashlib.pbkdf2_hmac("sha256", b"other", b"salt", 1000).hex()
    users.write_text(
        f"# census jobs\nalice:patient:sha256:{digest}\n"
        f"census-admin:admin:pbkdf2_sha256:1000:salt:{pbkdf2}\n"
    )
    return settings_for(migrated_url, rest_basic_auth_file=str(users))


async def test_basic_auth_where_the_deployment_enables_it(basic_settings: Settings) -> None:
    with GatewayServer.running(basic_settings) as server:
        sync_id = await seed_runs(server)
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for headers in (basic("alice", "s3cret"), basic("census-admin", "other")):
                ok = await http.get(f"/api/v1/syncs/{sync_id}/sync_runs", headers=headers)
                assert ok.status_code == 200 and ok.json()["pagination"]["total_records"] == 3
            for headers in (basic("alice", "wrong"), basic("mallory", "s3cret"), {}):
                refused = await http.get(f"/api/v1/syncs/{sync_id}/sync_runs", headers=headers)
                assert refused.status_code == 401
                assert refused.json() | {"message": ""} == {
                    "status": "error",
                    "code": "UNAUTHENTICATED",
                    "message": "",
                }
                assert refused.headers["www-authenticate"] == "Basic"


async def test_basic_auth_is_refused_where_it_is_not_enabled(server: GatewayServer) -> None:
    sync_id = await seed_runs(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.get(
            f"/api/v1/syncs/{sync_id}/sync_runs", headers=basic("alice", "s3cret")
        )
        assert refused.status_code == 401


async def test_graphql_carries_the_completion_error(server: GatewayServer) -> None:
    sync_id = await seed_runs(server)
    alice: GraphQLHttp = server.client(server.token("alice", Role.PATIENT))
    page = await alice.data(
        "query($s: Int!) { syncRuns(syncId: $s, perPage: 1, page: 2) "
        "{ data { status errorCode errorMessage currentStep } } }",
        s=sync_id,
    )
    assert page["syncRuns"]["data"] == [
        {
            "status": "COMPLETED",
            "errorCode": "JSON_ARRAY_ERROR",
            "errorMessage": SEED["data"][0]["error_message"],
            "currentStep": None,
        }
    ]


def test_a_basic_auth_file_that_cannot_be_used_stops_the_start(tmp_path: Path) -> None:
    broken = tmp_path / "users"
    broken.write_text("alice:patient:plaintext-password\n")
    for path in (broken, tmp_path / "missing"):
        with pytest.raises(ValueError, match=r"basic-auth file line 1|cannot read"):
            settings_for("sqlite+aiosqlite:///unused.db", rest_basic_auth_file=str(path))
