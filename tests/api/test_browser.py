"""A real browser: a page from another origin calls the gateway over fetch (with a bearer token)
and opens a live subscription over graphql-transport-ws; only a listed origin gets through.
GraphiQL runs under its Content-Security-Policy.

Needs Debian's headless Chromium (/usr/bin/chromium). Without it these tests skip loudly, except
under CI=true, where they fail (like the PostgreSQL tests).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.auth.principal import Role
from tests.support import GatewayServer, serve_in_thread, settings_for
from tests.support.browser import CHROMIUM, Chromium, Tab

IN_CI = os.environ.get("CI", "").lower() == "true"

# The page speaks graphql-transport-ws by hand, as a frontend without a client library would.
PAGE = """<!doctype html>
<html><head><title>waiting</title></head><body><script>
const config = %(config)s;
async function query() {
  try {
    const response = await fetch(config.http, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": `Bearer ${config.token}`},
      body: JSON.stringify({query: "{ me { id } }"}),
    });
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: String(error)};
  }
}
function subscribe() {
  return new Promise((resolve) => {
    const seqs = [];
    const ws = new WebSocket(config.ws, "graphql-transport-ws");
    ws.onopen = () => ws.send(JSON.stringify(
      {type: "connection_init", payload: {Authorization: `Bearer ${config.token}`}}));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        ws.send(JSON.stringify({id: "1", type: "subscribe", payload: {
          query: "subscription { heartbeat(intervalMs: 100, count: 2) { seq } }"}}));
      } else if (message.type === "next") {
        seqs.push(message.payload.data.heartbeat.seq);
      } else if (message.type === "complete") {
        resolve({seqs, completed: true});
        ws.close(1000);
      } else {
        resolve({seqs, unexpected: message});
      }
    };
    ws.onerror = () => resolve({seqs, error: "websocket error"});
    ws.onclose = (event) => resolve({seqs, closed: event.code});
  });
}
(async () => {
  window.__result = {fetch: await query(), ws: await subscribe()};
  document.title = "done";
})();
</script></body></html>
"""


class PageServer:
    """Serves one HTML page from its own loopback port: another origin than the gateway's."""

    def __init__(self) -> None:
        self.port = 0
        self.html = "<!doctype html><title>not yet</title>"
        self.app = Starlette(routes=[Route("/", self.page)])

    async def page(self, _: Request) -> HTMLResponse:
        return HTMLResponse(self.html)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bake(self, gateway: GatewayServer, token: str) -> None:
        """The page's script, with the gateway's addresses and the token in it."""
        config = {"http": gateway.url, "ws": gateway.ws_url, "token": token}
        self.html = PAGE % {"config": json.dumps(config)}


@contextmanager
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    with serve_in_thread(server.app) as port:
        server.port = port
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        warnings.warn(f"SKIPPING BROWSER TESTS: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPING BROWSER TESTS: {reason}")
    with Chromium() as browser:
        yield browser


@pytest.fixture
def tab(chromium: Chromium) -> Iterator[Tab]:
    tab = chromium.new_tab()
    try:
        yield tab
    finally:
        tab.close()


def run_page(tab: Tab, page: PageServer) -> dict[str, Any]:
    tab.navigate(page.origin + "/")
    tab.wait_for("document.title === 'done'")
    result: dict[str, Any] = tab.evaluate("window.__result")
    return result


def test_only_a_listed_origin_may_query_and_subscribe(
    migrated_url: str, chromium: Chromium
) -> None:
    with page_server() as listed, page_server() as unlisted:
        settings = settings_for(
            migrated_url, environment="production", cors_origins=(listed.origin,)
        )
        with GatewayServer.running(settings) as gateway:
            token = gateway.token("alice", Role.PATIENT)
            listed.bake(gateway, token)
            unlisted.bake(gateway, token)

            allowed_tab, refused_tab = chromium.new_tab(), chromium.new_tab()
            try:
                allowed = run_page(allowed_tab, listed)
                refused = run_page(refused_tab, unlisted)
                refused_log = "\n".join(refused_tab.log())
            finally:
                allowed_tab.close()
                refused_tab.close()

    assert allowed["fetch"] == {"status": 200, "body": {"data": {"me": {"id": "alice"}}}}
    assert allowed["ws"] == {"seqs": [1, 2], "completed": True}

    assert refused["fetch"] == {"error": "TypeError: Failed to fetch"}
    assert "blocked by CORS policy" in refused_log, refused_log
    assert refused["ws"]["seqs"] == []
    assert "error" in refused["ws"] or refused["ws"].get("closed") == 1006, refused
    assert "Unexpected response code: 403" in refused_log, refused_log


def test_graphiql_runs_a_query_under_its_content_security_policy(
    server: GatewayServer, tab: Tab
) -> None:
    """Development serves GraphiQL; its CSP must let the IDE load, fetch and render."""
    tab.navigate(server.url + "?q=" + "%7B%20__typename%20%7D")  # { __typename }
    tab.wait_for("!!document.querySelector('.graphiql-execute-button')")
    tab.evaluate("document.querySelector('.graphiql-execute-button').click()")
    response = tab.wait_for(
        "(document.querySelector('.result-window') || {}).innerText"
        "?.includes('__typename') && document.querySelector('.result-window').innerText"
    )
    assert '"Query"' in response, response
    assert tab.evaluate("window.__cspViolations") == [], tab.log()
