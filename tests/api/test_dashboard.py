"""The operators' dashboard at /dashboard and GraphiQL's example, in a real browser (Debian's
headless Chromium) against a real gateway: the dashboard asks for a token, keeps it for the tab
only, shows the devices and follows a device's writes live; GraphiQL opens with an example that
runs on the demo data. Without /usr/bin/chromium the browser tests skip loudly (fail under
CI=true); the page's serving is checked over plain HTTP too.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, validate

from gateway.auth.principal import Role
from gateway.dashboard import ASSETS_PATH
from gateway.graphql.ide import EXAMPLE_OPERATION, with_example
from gateway.graphql.schema import build_schema
from gateway.settings import Settings
from tests.support import GatewayServer, GraphQLHttp, create_project, settings_for
from tests.support.browser import Chromium, Tab, chromium_or_skip
from tests.support.pages import (
    DEVICE_ROWS,
    device_cell,
    graphiql_editor_text,
    open_dashboard,
    run_graphiql,
    set_graphiql_headers,
    sign_in,
)
from tests.support.screenshots import demo_database

PROJECT = "clinic"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with chromium_or_skip() as browser:
        yield browser


@pytest.fixture
def tab(chromium: Chromium) -> Iterator[Tab]:
    tab = chromium.new_tab()
    try:
        yield tab
    finally:
        tab.close()


def run(coroutine: Any) -> Any:
    """The tests drive the browser synchronously; the gateway runs in its own thread."""
    return asyncio.run(coroutine)


async def clinic(server: GatewayServer) -> None:
    """A project with a notes table, alice's phone and laptop known to it."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, PROJECT, "Clinic")
    await admin.data(
        'mutation($p: String!) { defineTable(project: $p, name: "notes", '
        'fields: [{name: "text", type: STRING, required: true}]) { name } }',
        p=PROJECT,
    )
    alice = server.client(server.token("alice", Role.PATIENT))
    for device in ("alice-phone", "alice-laptop"):
        await report(alice, device)


async def report(client: GraphQLHttp, device: str, pending_up: int = 0) -> None:
    await client.data(
        "mutation($p: String!, $d: String!, $n: Int!) { reportDevice(project: $p, deviceId: $d, "
        "pendingUp: $n) { status } }",
        p=PROJECT,
        d=device,
        n=pending_up,
    )


async def write_note(client: GraphQLHttp, user: str, device: str, n: int, text: str) -> None:
    action = {
        "table": "notes",
        "user": user,
        "action": "INSERT",
        "recordId": f"{n:032x}",
        "jsonData": json.dumps({"text": text}),
        "time": int(time.time() * 1000),
        "order": 0,
    }
    await client.data(
        "mutation($p: String!, $d: String!, $a: [ActionInput!]!) { writeActions(project: $p, "
        "deviceId: $d, actions: $a) { accepted } }",
        p=PROJECT,
        d=device,
        a=[action],
    )


def feed_has(record_id: str) -> str:
    return f"!!document.querySelector('#feed li[data-record-id=\"{record_id}\"]')"


def test_the_dashboard_follows_device_writes_live_and_keeps_the_token_for_the_tab(
    server: GatewayServer, tab: Tab
) -> None:
    run(clinic(server))
    open_dashboard(tab, server.base_url)

    # A token the gateway refuses is said so, and not kept.
    sign_in(tab, "not-a-token")
    refusal = tab.wait_for(
        "!document.querySelector('#sign-in-error').hidden"
        " && document.querySelector('#sign-in-error').textContent"
    )
    assert "refused the token" in refusal
    assert tab.evaluate("sessionStorage.length") == 0

    token = server.token("root", Role.ADMIN)
    sign_in(tab, token)
    tab.wait_for(f"{DEVICE_ROWS}.length === 2")
    assert tab.evaluate("document.querySelector('#project').value") == PROJECT
    assert tab.wait_for(device_cell("alice", "alice-laptop", "pending-down")) == "0"
    tab.wait_for("document.querySelector('#connection').dataset.state === 'live'")
    tab.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # alice's phone writes a note: the feed shows it, and the laptop now has it pending.
    alice = server.client(server.token("alice", Role.PATIENT))
    run(write_note(alice, "alice", "alice-phone", 7, "Slept well"))
    tab.wait_for(feed_has(f"{7:032x}"))
    feed_text = tab.evaluate("document.querySelector('#feed li').innerText")
    assert "Slept well" in feed_text and "alice-phone" in feed_text
    tab.wait_for(f"{device_cell('alice', 'alice-laptop', 'pending-down')} === '1'")

    # bob's tablet reports for the first time and writes: a new row, and its action in the feed.
    bob = server.client(server.token("bob", Role.PATIENT))
    run(report(bob, "bob-tablet", pending_up=3))
    tab.wait_for(f"{device_cell('bob', 'bob-tablet', 'pending-up')} === '3'")
    run(write_note(bob, "bob", "bob-tablet", 8, "Ward round"))
    tab.wait_for(feed_has(f"{8:032x}"))
    assert tab.evaluate("window.__sameDocument") is True

    # The token is this tab's only: not in localStorage, a cookie or the address.
    assert tab.evaluate("localStorage.length") == 0
    assert tab.evaluate("document.cookie") == ""
    assert token not in tab.evaluate("location.href")
    assert tab.evaluate("sessionStorage.getItem('sync-gateway-dashboard-token')") == token
    assert tab.evaluate("window.__cspViolations") == [], tab.log()

    tab.evaluate("document.querySelector('#forget').click()")
    tab.wait_for("document.querySelector('#sign-in').hidden === false")
    assert tab.evaluate("sessionStorage.length") == 0


def test_graphiql_opens_with_an_example_that_runs_on_the_demo_data(
    server: GatewayServer, tab: Tab
) -> None:
    run(demo_database(server.settings.database_url))
    tab.navigate(server.url)
    tab.wait_for("!!document.querySelector('.graphiql-execute-button')")
    example = graphiql_editor_text(tab)
    assert "query DemoOverview" in example
    assert "gateway token --user" in example and '{"Authorization": "Bearer' in example

    set_graphiql_headers(tab, {"Authorization": f"Bearer {server.token('admin', Role.ADMIN)}"})
    result = json.loads(run_graphiql(tab, "WAREHOUSE_UNAVAILABLE"))
    data = result["data"]
    assert {d["deviceId"] for d in data["devices"]} == {"alice-phone", "alice-laptop", "bob-tablet"}
    assert [r["errorCode"] for r in data["projectSyncRuns"]["data"]] == ["WAREHOUSE_UNAVAILABLE"]
    assert [e["node"]["type"] for e in data["conflicts"]["edges"]] == ["CONCURRENT_UPDATE"]
    assert tab.evaluate("window.__cspViolations") == [], tab.log()


# Serving (no database work: one SQLite file)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def fetch(server: GatewayServer, path: str) -> httpx.Response:
    return httpx.get(server.base_url + path, headers={"Accept": "text/html"})


def test_the_dashboard_is_served_with_its_assets_under_a_strict_policy(sqlite_url: str) -> None:
    with GatewayServer.running(settings_for(sqlite_url, environment="production")) as server:
        page = fetch(server, "/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = dict(
            d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";")
        )
        # Only this gateway's own files and connections; no inline code, nothing from elsewhere.
        assert csp["default-src"] == "'none'"
        assert csp["script-src"] == csp["style-src"] == csp["connect-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'"
        assert "<script>" not in page.text and "<style" not in page.text
        assert " style=" not in page.text and "http" not in page.text  # nothing off the gateway
        assets = re.findall(r'(?:src|href)="(dashboard-assets/[^"]+)"', page.text)
        assert len(assets) == 2, page.text
        for asset in [*assets, "dashboard-assets/graphql-ws.js"]:
            response = fetch(server, "/" + asset)
            assert response.status_code == 200, asset
            kind = "text/css" if asset.endswith(".css") else "text/javascript"
            assert response.headers["content-type"].startswith(kind), asset


def test_gateway_dashboard_false_switches_it_off(sqlite_url: str) -> None:
    with GatewayServer.running(settings_for(sqlite_url, dashboard=False)) as server:
        assert fetch(server, "/dashboard").status_code == 404
        assert fetch(server, f"{ASSETS_PATH}/dashboard.js").status_code == 404


# GraphiQL's example


def test_graphiql_example_is_a_valid_operation_of_the_schema() -> None:
    """It must keep working as the schema changes (the demo data it reads is tested above)."""
    schema = build_schema(Settings(_env_file=None))  # type: ignore[call-arg]
    assert validate(schema._schema, parse(EXAMPLE_OPERATION)) == []
    # It is put into a JavaScript template literal.
    assert "`" not in EXAMPLE_OPERATION and "${" not in EXAMPLE_OPERATION


def test_with_example_replaces_strawberrys_welcome_and_saves_no_headers() -> None:
    page = (
        "<script>const EXAMPLE_QUERY = `# Welcome to GraphiQL`;\n"
        "render({shouldPersistHeaders: true});</script>"
    )
    assert with_example(page) == (
        f"<script>const EXAMPLE_QUERY = `{EXAMPLE_OPERATION}`;\n"
        "render({shouldPersistHeaders: false});</script>"
    )
    with pytest.raises(RuntimeError):
        with_example("<script>render({shouldPersistHeaders: true});</script>")
    with pytest.raises(RuntimeError):  # Strawberry's page changed: look again at what it keeps
        with_example("<script>const EXAMPLE_QUERY = `x`;\nrender();</script>")


def test_the_served_graphiql_keeps_no_token(sqlite_url: str) -> None:
    """Strawberry's own page, as the gateway serves it in development: GraphiQL is told not
    to save its Headers pane (the bearer token) in localStorage."""
    with GatewayServer.running(settings_for(sqlite_url, environment="development")) as server:
        page = fetch(server, "/graphql")
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert "shouldPersistHeaders: false" in page.text
    assert "shouldPersistHeaders: true" not in page.text
