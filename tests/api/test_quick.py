"""Requests run as plans (gateway/graphql/quick.py) answer exactly as Strawberry's pipeline does.

The fuzzer's operations (tests/support/fuzz.py: valid and broken documents, wrong variables,
every kind of caller, queries and mutations, over POST and GET) go to a running gateway with
the plans off, on, and off again, on both databases. Where the two answers without plans agree
(the operation changed nothing it reads), the answer with them must be byte-identical: HTTP
status, content type and body.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.graphql import quick
from tests.support import GatewayServer, settings_for
from tests.support.fuzz import Operation, World, make_world, operations

RETRIES = 5
# A read's cursor holds the read horizon, which any transaction on the PostgreSQL server moves.
_HORIZON = re.compile(r'("cursor[A-Za-z0-9_]*": ?)"[^"]*"')


async def _answer(http: httpx.AsyncClient, url: str, world: World, op: Operation) -> str:
    headers = {"Accept": op.accept}
    token = world.tokens[op.caller]
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    long = len(op.document) + len(json.dumps(op.variables)) > 4000  # too long for a URL
    if op.transport == "get" and not long:
        params = {"query": op.document}
        if op.variables is not None:
            params["variables"] = json.dumps(op.variables)
        if op.operation_name is not None:
            params["operationName"] = op.operation_name
        response = await http.get(url, params=params, headers=headers)
    else:
        body: dict[str, Any] = {"query": op.document, "variables": op.variables}
        if op.operation_name is not None:
            body["operationName"] = op.operation_name
        headers["Content-Type"] = "application/json"
        response = await http.post(url, content=json.dumps(body), headers=headers)
    shown = _shown(response.text, several=len(op.fields) > 1)
    return f"{response.status_code} {response.headers.get('content-type')} {shown}"


def _shown(body: str, several: bool) -> str:
    """The body without what differs between any two runs of the same path: the read horizon
    in cursors, and which errors come first. Root fields run at once: errors are listed as they
    happen, and when a failing field leaves no data, only the errors until then are, so with
    ``several`` root fields an answer without data is compared by its error codes."""
    body = _HORIZON.sub(r'\1"<cursor>"', body)
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if isinstance(answer, dict) and isinstance(answer.get("errors"), list):
        errors = answer["errors"]
        if several and answer.get("data") is None:
            answer["errors"] = sorted({str(e.get("extensions", {}).get("code")) for e in errors})
        else:
            errors.sort(key=json.dumps)
    return json.dumps(answer)


def test_plans_answer_as_the_pipeline(migrated_url: str) -> None:
    with (
        GatewayServer.running(settings_for(migrated_url, rate_limit_per_second=0)) as server,
        asyncio.Runner() as runner,
    ):
        world = runner.run(make_world(server))
        http = httpx.AsyncClient(timeout=30)

        async def answer(op: Operation, planned: bool) -> str:
            quick.ENABLED = planned
            return await _answer(http, server.url, world, op)

        async def three(op: Operation) -> tuple[str, str, str]:
            before = await answer(op, False)
            planned = await answer(op, True)
            after = await answer(op, False)
            # Root fields run at once, and one may fail before or after another in any run; a
            # plan answering otherwise does so every time.
            for _ in range(RETRIES):
                if planned == before:
                    break
                planned = await answer(op, True)
            return before, planned, after

        http_operations = operations(world).filter(
            lambda op: op.transport in ("http", "get") and not op.subscription
        )

        @settings(
            max_examples=120,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(http_operations, st.just(None))
        def alike(op: Operation, _: None) -> None:
            before, planned, after = runner.run(three(op))
            assume(before == after)  # it changed what it reads (a mutation, a read's own run)
            assert planned == before, op

        try:
            alike()
        finally:
            quick.ENABLED = True
            runner.run(http.aclose())
        view = next(r.endpoint for r in server.app.routes if getattr(r, "path", "") == "/graphql")
        assert view.schema.quick.planned >= 40  # most well-formed operations ran as plans
