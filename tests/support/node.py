"""Node for the suite's JavaScript clients (tests/node, from `npm ci --prefix tests/node`): a test
that needs it skips loudly without it, and fails under CI=true."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest

NODE_PROJECT = Path(__file__).parents[1] / "node"
IN_CI = os.environ.get("CI", "").lower() == "true"


def node_or_skip(package: str, what: str) -> str:
    """The ``node`` executable, once ``package`` is installed in tests/node; ``what`` names the
    test in the skip reason."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (NODE_PROJECT / "node_modules" / package).is_dir():
        problem = f"{NODE_PROJECT / 'node_modules'} is missing: run 'npm ci --prefix tests/node'"
    if problem is not None:
        reason = f"SKIPPING {what.upper()}: {problem}"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        warnings.warn(reason, stacklevel=3)
        pytest.skip(reason)
    assert node is not None
    return node
