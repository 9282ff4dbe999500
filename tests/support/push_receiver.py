"""A real HTTP server standing in for FCM or a webhook receiver in push tests."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import serve_in_thread


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class PushReceiver:
    """Records every request; ``answer`` decides each response (default 200)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received, int], Response] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def messages(self, path: str = "/push") -> list[Any]:
        with self._lock:
            return [r.body for r in self.received if r.path == path]

    async def wait_for(
        self, condition: Callable[[PushReceiver], bool], seconds: float = 15
    ) -> None:
        """Requests arrive in the server's thread: poll for them."""
        deadline = time.monotonic() + seconds
        while not condition(self):
            assert time.monotonic() < deadline, f"timed out; received {self.received}"
            await asyncio.sleep(0.02)

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            body: Any = json.loads(raw)
        else:
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        got = Received(request.url.path, dict(request.headers), body)
        with self._lock:
            self.received.append(got)
            seen = sum(1 for r in self.received if r.path == got.path and r.body == got.body)
        if self.answer is not None:
            return self.answer(got, seen)
        return JSONResponse({"name": "projects/x/messages/1"})


@contextmanager
def push_receiver() -> Iterator[PushReceiver]:
    receiver = PushReceiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    with serve_in_thread(app) as port:
        receiver.port = port
        yield receiver
