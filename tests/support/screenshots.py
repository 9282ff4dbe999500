"""The README's screenshots of the dashboard and of GraphiQL, taken from the demo data.

    PYTHONPATH=. python -m tests.support.screenshots [--out docs]

Starts a gateway on a fresh SQLite file with ``gateway demo``'s data, adds what a running
deployment has and the demo lacks (a sync run at work, devices' heartbeats, live writes), and
photographs both pages in Debian's headless Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from pathlib import Path

import httpx

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.migrate import upgrade
from gateway.demo import DEMO_PROJECT, load_demo
from tests.support import GatewayServer, settings_for
from tests.support.browser import Chromium, Tab
from tests.support.pages import (
    DEVICE_ROWS,
    open_dashboard,
    run_graphiql,
    set_graphiql_headers,
    sign_in,
)

WIDTH, HEIGHT = 1360, 860


async def demo_database(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        await load_demo(db)
    finally:
        await db.dispose()


def graphql(server: GatewayServer, token: str, query: str, **variables: object) -> dict:
    response = httpx.post(
        server.url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


def busy_deployment(server: GatewayServer, admin: str) -> None:
    """The export job at work, and the devices' latest heartbeats."""
    syncs = graphql(
        server, admin, "query($p: String!) { syncs(project: $p) { id name } }", p=DEMO_PROJECT
    )
    export = next(s["id"] for s in syncs["syncs"] if s["name"] == "nightly-export")
    run = graphql(
        server,
        admin,
        "mutation($s: Int!) { startSyncRun(syncId: $s, syncTriggerReason: "
        '{uiTag: "Manual", uiDetail: "re-run by admin"}) { id } }',
        s=export,
    )["startSyncRun"]["id"]
    graphql(
        server,
        admin,
        'mutation($r: Int!) { updateSyncRun(id: $r, currentStep: "Loading", counters: '
        "{sourceRecordCount: 7, recordsProcessed: 3}) { id } }",
        r=run,
    )
    for user, device, name, kind, pending in (
        ("alice", "alice-phone", "Alice's Pixel", "android", 0),
        ("alice", "alice-laptop", "Alice's laptop", "web", 2),
        ("bob", "bob-tablet", "Ward tablet 3", "ios", 5),
    ):
        graphql(
            server,
            admin,
            "mutation($p: String!, $u: String!, $d: String!, $n: String!, $t: String!, $c: Int!)"
            " { reportDevice(project: $p, user: $u, deviceId: $d, name: $n, type: $t, "
            'version: "2.4.1", pendingUp: $c) { status } }',
            p=DEMO_PROJECT,
            u=user,
            d=device,
            n=name,
            t=kind,
            c=pending,
        )


def live_writes(server: GatewayServer, admin: str) -> None:
    """A few notes written by alice's laptop while the dashboard watches."""
    now = int(time.time() * 1000)
    actions = [
        {
            "table": "notes",
            "user": "alice",
            "action": "INSERT",
            "recordId": f"{0xABC0 + n:032x}",
            "jsonData": f'{{"text": "{text}", "mood": {mood}}}',
            "time": now + n,
            "order": 0,
        }
        for n, (text, mood) in enumerate(
            (("Walked to the market", 4), ("Slept badly", 2), ("Physio went well", 5))
        )
    ]
    graphql(
        server,
        admin,
        "mutation($p: String!, $a: [ActionInput!]!) { writeActions(project: $p, "
        'user: "alice", deviceId: "alice-laptop", actions: $a) { accepted } }',
        p=DEMO_PROJECT,
        a=actions,
    )


def screenshot(tab: Tab, path: Path) -> None:
    # The dashboard re-reads the devices at most once a second after live events: let it.
    time.sleep(1.5)
    shot = tab.send("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gateway-screenshots-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        asyncio.run(demo_database(url))
        with GatewayServer.running(settings_for(url)) as server, Chromium() as browser:
            admin = server.token("admin", Role.ADMIN)
            busy_deployment(server, admin)
            tab = browser.new_tab()
            tab.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            )
            open_dashboard(tab, server.base_url)
            sign_in(tab, admin)
            tab.wait_for(f"{DEVICE_ROWS}.length === 3")
            tab.wait_for("document.querySelectorAll('#feed li').length > 0")
            live_writes(server, admin)
            tab.wait_for("document.querySelectorAll('#feed li.live').length === 3")
            screenshot(tab, args.out / "dashboard.png")

            # GraphiQL with its example run: the token goes into its Headers pane.
            tab.navigate(server.url)
            tab.wait_for("!!document.querySelector('.graphiql-execute-button')")
            set_graphiql_headers(tab, {"Authorization": f"Bearer {admin}"})
            run_graphiql(tab, "WAREHOUSE_UNAVAILABLE")
            screenshot(tab, args.out / "graphiql.png")


if __name__ == "__main__":
    main()
