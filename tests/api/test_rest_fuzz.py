"""The REST paths fuzzed with schemathesis from the served ``/openapi.json``, against the real
server on both databases: no answer is a 5xx, and every answer conforms to the document
(status, content type, body schema); an adapter may refuse more than the schemas say. Bounded
and reproducible: few examples per operation, derandomized, and a time budget per database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer
from tests.support.live import make_project, write_notes

MAX_EXAMPLES = 30  # per operation
BUDGET_SECONDS = 10.0  # per database: examples after it pass without a request


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # SenSeeAct's watch would hold each fuzzed call for a minute.
    return settings.model_copy(update={"senseeact_watch_seconds": 0.2})


def test_every_operation_answers_as_documented(server: GatewayServer) -> None:
    alice = server.token("alice", Role.PATIENT)

    async def seed() -> dict[str, Any]:
        await make_project(server)
        await write_notes(server.client(alice), range(3))
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            document: dict[str, Any] = (await http.get("/openapi.json")).json()
        return document

    document = asyncio.run(seed())
    assert document["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {alice}"}
    deadline = time.monotonic() + BUDGET_SECONDS
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/data/{project}/sync-status",
        "/api/sync/status",
        "/api/v1/syncs/{sync_id}/sync_runs",
        "/sync/project/{project}/read",
        "/sync/project/{project}/watch",
    }
    for operation in operations:

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def answers_as_documented(case: schemathesis.Case) -> None:
            if time.monotonic() > deadline:
                return
            # Refusing schema-valid data is allowed: the document gives shapes and ranges, the
            # adapters also refuse what no schema says (control characters, unknown tables).
            case.call_and_validate(
                base_url=server.base_url,
                headers=headers,
                excluded_checks=[positive_data_acceptance],
            )

        answers_as_documented()
