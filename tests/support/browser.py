"""Debian's headless Chromium, driven over the Chrome DevTools Protocol with ``websockets``.

No browser-downloading tool: Chromium is started with ``--remote-debugging-port=0``, writes the
port it chose into ``<user-data-dir>/DevToolsActivePort``, and this client speaks CDP over the
browser's WebSocket (flattened sessions: one connection, a ``sessionId`` per tab).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # the pages and the gateway are on loopback
)

#: Installed in every page before its own scripts: Content-Security-Policy violations are kept
#: where the tests can read them.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class CdpError(RuntimeError):
    pass


class Chromium:
    """A headless Chromium for the duration of a ``with`` block, killed afterwards."""

    def __init__(self, executable: Path = CHROMIUM, start_timeout: float = 30.0) -> None:
        self.executable = executable
        self.start_timeout = start_timeout
        self._next_id = 0
        self.events: list[dict[str, Any]] = []  # every CDP event received so far

    def __enter__(self) -> Chromium:
        self._connection = contextlib.ExitStack()
        self._profile = tempfile.TemporaryDirectory(prefix="gateway-chromium-")
        profile = Path(self._profile.name)
        self._log = (profile.parent / f"{profile.name}.log").open("w+b")
        self._process = subprocess.Popen(
            [
                str(self.executable),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            port, path = self._devtools_address(profile / "DevToolsActivePort")
            self._ws: ClientConnection = self._connection.enter_context(
                connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
            )
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _devtools_address(self, port_file: Path) -> tuple[str, str]:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited ({self._process.returncode}):\n{self.log()}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:  # written whole only once the endpoint listens
                return lines[0], lines[1]
            time.sleep(0.05)
        raise RuntimeError(f"Chromium wrote no {port_file.name} in time:\n{self.log()}")

    def _stop(self) -> None:
        if hasattr(self, "_ws"):
            with contextlib.suppress(Exception):  # it is killed below if it does not close
                self.send("Browser.close", timeout=5)
        self._connection.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        self._profile.cleanup()

    def log(self) -> str:
        """The tail of Chromium's own output, for failure messages."""
        self._log.flush()
        return Path(self._log.name).read_bytes()[-4000:].decode(errors="replace")

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """One CDP command and its result; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self._ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if reply.get("id") != self._next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise CdpError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    def new_tab(self) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        tab = Tab(self, target, session["sessionId"])
        for domain in ("Page", "Runtime", "Log"):
            tab.send(f"{domain}.enable")
        tab.send("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS})
        return tab


class Tab:
    """One page of the browser."""

    def __init__(self, browser: Chromium, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session_id)

    def navigate(self, url: str) -> None:
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Polls until the expression is truthy and returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except CdpError:
                value = None  # e.g. the page is still being replaced by the navigation
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} stayed falsy; browser log:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> list[str]:
        """What the browser reported for this tab: console messages, network and CORS
        errors, uncaught exceptions."""
        lines = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session_id:
                continue
            params = event.get("params", {})
            match event.get("method"):
                case "Log.entryAdded":
                    lines.append(params["entry"]["text"])
                case "Runtime.consoleAPICalled":
                    lines.append(" ".join(str(a.get("value", "")) for a in params["args"]))
                case "Runtime.exceptionThrown":
                    lines.append(str(params["exceptionDetails"].get("exception", {})))
        return lines

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target_id})


@contextlib.contextmanager
def chromium_or_skip() -> Iterator[Chromium]:
    """A browser for a test module: without /usr/bin/chromium its tests skip loudly, except under
    CI=true, where they fail (like the PostgreSQL tests)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        warnings.warn(f"SKIPPING BROWSER TESTS: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPING BROWSER TESTS: {reason}")
    with Chromium() as browser:
        yield browser
