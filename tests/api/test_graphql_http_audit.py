"""graphql-http's GraphQL-over-HTTP audit suite (the npm package, run by Node in
tests/node/audit.mjs) against the real gateway: every audit must pass, warnings included.

Without Node or tests/node/node_modules (``npm ci --prefix tests/node``; .ci/run does it) the
test skips and says why, except under CI=true, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from tests.support import GatewayServer

NODE_PROJECT = Path(__file__).parents[1] / "node"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (NODE_PROJECT / "node_modules" / "graphql-http").is_dir():
        problem = f"{NODE_PROJECT / 'node_modules'} is missing: run 'npm ci --prefix tests/node'"
    if problem is not None:
        reason = f"SKIPPING THE GRAPHQL-OVER-HTTP AUDIT: {problem}"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    assert node is not None
    return node


def test_graphql_http_audit_passes_without_warnings(server: GatewayServer) -> None:
    node = _node()
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
