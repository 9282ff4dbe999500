"""/metrics after real traffic: HTTP queries (the quick path included), a mutation, an error,
a subscription over WebSocket and a write delivered to it; the exposition parses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, settings_for
from tests.support.live import (
    PROTOCOLS,
    count_at_least,
    live_session,
    make_project,
    subscription,
    take,
    write_notes,
)

JSON = {"Content-Type": "application/json"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: GatewayServer, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await http.get("/metrics", headers=headers)


async def samples(server: GatewayServer) -> Samples:
    response = await scrape(server)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: Samples, name: str) -> float:
    return sum(v for (n, _), v in found.items() if n == name)


async def until(server: GatewayServer, holds: Callable[[Samples], bool]) -> Samples:
    """Scrapes until ``holds`` (what is counted after a message was sent lands a moment
    later than the message), for up to 15 seconds."""
    for _ in range(300):
        if holds(found := await samples(server)):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the metrics never got there: {found}")


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    # Fresh database gauges at every scrape; two operation names get labels of their own.
    return settings_for(migrated_url, metrics_cache_seconds=0, metrics_max_operation_names=2)


async def test_metrics_count_real_traffic(server: GatewayServer) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    for _ in range(3):  # planned once, then run by the quick path (graphql/quick.py)
        await alice.data("query Me { me { id } }")
    error = await alice.error("query Bad { me { nope } }")  # refused by Strawberry's pipeline
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    await alice.data("query Third { me { id } }")  # past the two names: counted as other
    async with httpx.AsyncClient(base_url=server.base_url) as http:  # refused before GraphQL
        refused = await http.post("/graphql", content=b"{not json", headers=JSON)
    assert refused.status_code == 400

    token = server.token("alice", Role.PATIENT)
    async with (
        live_session(server, token, PROTOCOLS[0]) as session,
        subscription(session, deviceId="laptop") as stream,
    ):
        # gql sends the subscription when the stream is first read.
        taken = asyncio.create_task(take(stream, count_at_least(3)))
        # Started, and its first read done (it registered the laptop): the notes below come
        # once it is caught up, so their delivery's lag is measured.
        found = await until(
            server,
            lambda s: (
                value(s, "gateway_subscriptions_active", field="databaseActions") == 1
                and total(s, "gateway_devices") == 1
            ),
        )
        assert value(found, "gateway_websocket_connections") == 1
        await write_notes(alice, range(3), device="phone")
        await taken
        found = await until(
            server,
            lambda s: (
                value(s, "gateway_actions_delivered_total") >= 3
                and value(s, "gateway_delivery_lag_seconds_count") >= 1
            ),
        )
    found = await until(
        server,
        lambda s: (
            value(s, "gateway_websocket_connections") == 0
            and value(s, "gateway_subscriptions_active", field="databaseActions") == 0
            # the write's run, and the live run, completed as the subscription ended
            and value(s, "gateway_sync_runs", status="COMPLETED") == 2
        ),
    )

    ops = "gateway_graphql_operations_total"
    assert value(found, ops, operation="Me", type="query", outcome="ok") == 3
    assert value(found, ops, operation="Bad", type="query", outcome="error") == 1
    assert value(found, ops, operation="other", type="query", outcome="ok") == 1
    # make_project's and write_notes' mutations have no name.
    assert value(found, ops, operation="unnamed", type="mutation", outcome="ok") >= 4
    assert value(found, ops, operation="unnamed", type="subscription", outcome="ok") == 1
    assert value(found, "gateway_graphql_errors_total", code="BAD_USER_INPUT") == 2
    assert value(found, "gateway_http_responses_total", status="400") == 1
    durations = "gateway_graphql_operation_duration_seconds_count"
    assert value(found, durations, operation="Me", type="query") == 3
    assert value(found, "gateway_graphql_subscription_duration_seconds_count", operation="unnamed")
    assert value(found, "gateway_actions_written_total") == 3
    assert value(found, "gateway_actions_delivered_total") == 3
    assert value(found, "gateway_http_responses_total", status="200") >= 9

    # The fleet: alice's phone (it wrote) and laptop (it subscribed), and their runs.
    assert total(found, "gateway_devices") == 2
    assert value(found, "gateway_pending_changes", direction="down") == 0  # laptop has all
    assert ("gateway_oldest_transaction_age_seconds", frozenset()) in found
    assert ("gateway_read_horizon_lag_transactions", frozenset()) in found
    assert value(found, "gateway_db_pool_capacity") >= 1


@pytest.mark.parametrize("metrics_token", ["scrape-secret"])
async def test_metrics_need_the_token_when_one_is_set(
    migrated_url: str, metrics_token: str
) -> None:
    with GatewayServer.running(settings_for(migrated_url, metrics_token=metrics_token)) as server:
        refused = await scrape(server)
        wrong = await scrape(server, "not-it")
        allowed = await scrape(server, metrics_token)
    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    assert "gateway_graphql_operations" in allowed.text
    with GatewayServer.running(settings_for(migrated_url, metrics=False)) as server:
        assert (await scrape(server)).status_code == 404


async def test_a_transaction_left_open_shows_in_the_horizon_gauges(
    server: GatewayServer, backend: str
) -> None:
    # (a sweep of sync runs may be running at a scrape: it is a transaction too)
    before = await until(server, lambda s: value(s, "gateway_oldest_transaction_age_seconds") == 0)
    assert value(before, "gateway_read_horizon_lag_transactions") == 0
    if backend == "sqlite":
        return  # nothing holds SQLite's readers back: the gauges stay 0
    url = server.settings.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    holder, other = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT pg_current_xact_id()")  # it has an xid: it can write
            await other.execute("SELECT pg_current_xact_id()")  # a transaction completes after
            found = await until(
                server, lambda s: value(s, "gateway_oldest_transaction_age_seconds") > 0
            )
            assert value(found, "gateway_read_horizon_lag_transactions") >= 1
    finally:
        await holder.close()
        await other.close()
    after = await until(server, lambda s: value(s, "gateway_oldest_transaction_age_seconds") == 0)
    assert value(after, "gateway_read_horizon_lag_transactions") == 0
