"""Two PostgreSQL-backed ``gateway serve`` replicas behind a real nginx running the committed
configuration (deploy/nginx/sync-gateway.conf): a device subscribed through nginx keeps every
action, exactly once, when the replica holding its subscription is drained (SIGTERM) and it
reconnects through nginx to the other one.

nginx comes from Debian's package (`.ci/run` installs it when missing); without it the test
skips loudly, and fails under CI=true."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.auth.principal import Role
from tests.live.test_http_subscriptions import ids as batch_ids
from tests.live.test_http_subscriptions import next_batch, streaming
from tests.live.test_replicas import free_port, replica_process
from tests.support import GatewayServer
from tests.support.live import SUBSCRIBE, make_project, progress_of, write_notes

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_CONF = ROOT / "deploy" / "nginx" / "sync-gateway.conf"
GRACE = "2"  # GATEWAY_DRAIN_GRACE_SECONDS: the test waits it out once


def render(committed: str, upstreams: list[int], listen: int) -> str:
    """The committed file with only its replicas' addresses and its listen port replaced."""
    upstream = re.search(r"upstream sync_gateway \{.*?\n\}", committed, re.S)
    assert upstream, "the committed configuration names its upstream sync_gateway"
    body = upstream.group(0)
    template = re.search(r"^(\s*)server \S+( [^;]*)?;$", body, re.M)
    assert template, "the upstream lists its replicas as `server host:port ...;` lines"
    indent, options = template.group(1), template.group(2) or ""
    kept = [line for line in body.splitlines() if not re.match(r"\s*server \S+", line)]
    servers = [f"{indent}server 127.0.0.1:{port}{options};" for port in upstreams]
    rendered_upstream = "\n".join([kept[0], *servers, *kept[1:]])
    text = committed.replace(body, rendered_upstream)
    text, listens = re.subn(
        r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen};", text, count=1, flags=re.M
    )
    assert listens == 1, "the committed configuration listens on port 80"
    return text


@asynccontextmanager
async def nginx(binary: str, tmp: Path, upstreams: list[int]) -> AsyncIterator[int]:
    """nginx in the foreground as this test's own process, with the committed configuration
    rendered for ``upstreams``; yields the port it listens on."""
    port = free_port()
    for name in ("logs", "temp"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    (tmp / "sync-gateway.conf").write_text(render(COMMITTED_CONF.read_text(), upstreams, port))
    temp = tmp / "temp"
    (tmp / "nginx.conf").write_text(
        "worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log {tmp}/logs/access.log;\n"
        + "".join(
            f"  {kind}_temp_path {temp}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {tmp}/sync-gateway.conf;\n"
        "}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        binary, "-p", str(tmp), "-e", str(tmp / "logs" / "error.log"),
        "-c", str(tmp / "nginx.conf"),
        "-g", f"daemon off; master_process on; pid {tmp}/nginx.pid;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(20):
            while True:
                if proc.returncode is not None:
                    assert proc.stderr is not None
                    raise AssertionError(f"nginx exited: {(await proc.stderr.read()).decode()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    await asyncio.sleep(0.05)
        yield port
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


class Device:
    """A device's live feed over graphql-transport-ws: it keeps the progress of every message
    it received, and subscribes again from it after a reconnect."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.record_ids: list[str] = []
        self.progress: list[dict[str, str]] | None = None
        self.connections = 0

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        protocols = [Subprotocol("graphql-transport-ws")]
        async with websockets.connect(self.url, subprotocols=protocols) as ws:
            self.connections += 1
            init = {"Authorization": f"Bearer {self.token}"}
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            variables: dict[str, Any] = {"project": "live", "deviceId": "laptop", "maxCount": 0}
            if self.progress is not None:
                variables["progress"] = self.progress
            payload = {"query": SUBSCRIBE, "variables": variables}
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
            yield ws

    async def receive(self, ws: Any, until: int, seconds: float = 20) -> None:
        """Messages until ``until`` actions arrived in all (ConnectionClosed if it closes)."""
        async with asyncio.timeout(seconds):
            while len(self.record_ids) < until:
                message = json.loads(await ws.recv())
                assert message["type"] == "next", message
                batch = message["payload"]["data"]["databaseActions"]
                self.record_ids += [a["recordId"] for a in batch["actions"]]
                self.progress = [
                    {"table": p["table"], "cursor": p["cursor"]} for p in batch["progress"]
                ]


async def subscriptions_on(replica: GatewayServer) -> float:
    """The replica's open databaseActions subscriptions, from its own /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(replica.base_url + "/metrics")).text
    match = re.search(
        r'^gateway_subscriptions_active\{field="databaseActions"\} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def ids(numbers: range) -> list[str]:
    return [f"{n:032x}" for n in numbers]


async def test_a_drained_replicas_subscriber_resumes_through_nginx(
    postgres_url: str, tmp_path: Path, nginx_binary: str
) -> None:
    async with AsyncExitStack() as stack:
        replicas: list[tuple[GatewayServer, asyncio.subprocess.Process]] = []
        for name in ("a", "b"):  # one after the other: the first one migrates
            (tmp_path / name).mkdir()
            replicas.append(
                await stack.enter_async_context(
                    replica_process(postgres_url, tmp_path / name, drain_grace_seconds=GRACE)
                )
            )
        port = await stack.enter_async_context(
            nginx(nginx_binary, tmp_path / "nginx", [r.port for r, _ in replicas])
        )
        front = GatewayServer(settings=replicas[0][0].settings, port=port)
        writer = front.client(front.token("alice", Role.PATIENT))

        # Through nginx: set up, write, and the client's request id comes back.
        await make_project(front)
        await write_notes(writer, range(1, 6))
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                front.url, json={"query": "{ __typename }"}, headers={"X-Request-ID": "nginx-t-1"}
            )
        assert answer.headers["x-request-id"] == "nginx-t-1"

        device = Device(front.ws_url, front.token("alice", Role.PATIENT))
        async with device.connect() as ws:
            await device.receive(ws, until=5)  # the backlog
            held = [await subscriptions_on(r) for r, _ in replicas]
            assert sorted(held) == [0.0, 1.0], held
            _, holder_proc = replicas[held.index(1.0)]
            other = replicas[held.index(0.0)][0]

            await write_notes(writer, range(6, 11))  # live, through nginx
            await device.receive(ws, until=10)

            holder_proc.send_signal(signal.SIGTERM)
            # While the holder drains, writes through nginx still land (on either replica).
            await write_notes(writer, range(11, 16))
            with pytest.raises(ConnectionClosed) as closed:
                await device.receive(ws, until=10_000, seconds=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert await asyncio.wait_for(holder_proc.wait(), 30) == 0

        # Reconnect through nginx (it skips the stopped replica) and resume from the progress
        # stored from the last message: what the drain interrupted arrives, then live writes.
        async with device.connect() as ws:
            await write_notes(writer, range(16, 21))
            await device.receive(ws, until=20)
            assert await subscriptions_on(other) == 1.0
            await write_notes(writer, range(21, 26))  # and live again
            await device.receive(ws, until=25)
        assert device.record_ids == ids(range(1, 26))  # none missing, none twice, in order
        assert device.connections == 2

        # A subscription streamed over HTTP (for networks that block WebSockets) passes nginx
        # batch by batch while its response goes on, the backlog and a live batch.
        progress, n = device.progress, 26
        for transport in ("sse", "multipart"):
            await write_notes(writer, [n])
            resume = {"deviceId": "tablet", "progress": progress}
            async with streaming(front, transport, device.token, resume) as payloads:
                backlog = await next_batch(payloads)
                await write_notes(writer, [n + 1])
                live = await next_batch(payloads)
            assert [batch_ids(backlog), batch_ids(live)] == [
                ids(range(n, n + 1)),
                ids(range(n + 1, n + 2)),
            ]
            progress, n = progress_of(live), n + 2
