"""graphql-http's GraphQL-over-HTTP audit suite (the npm package, run by Node in
tests/node/audit.mjs) against the real gateway: every audit must pass, warnings included.

Without Node or tests/node/node_modules (``npm ci --prefix tests/node``; .ci/run does it) the
test skips and says why, except under CI=true, where it fails."""

from __future__ import annotations

import json
import subprocess

from tests.support import GatewayServer
from tests.support.node import NODE_PROJECT, node_or_skip


def test_graphql_http_audit_passes_without_warnings(server: GatewayServer) -> None:
    node = node_or_skip("graphql-http", "the GraphQL-over-HTTP audit")
    run = subprocess.run(
        [node, str(NODE_PROJECT / "audit.mjs"), server.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) >= 50, "the audit suite ran"
    failed = [r for r in results if r["status"] != "ok"]
    assert not failed, json.dumps(failed, indent=1)
