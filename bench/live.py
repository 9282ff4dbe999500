"""Benchmark of live delivery over WebSocket subscriptions, against PostgreSQL.

With N idle subscriptions (N distinct users, one ``databaseActions`` subscription each, K per
graphql-transport-ws connection) and one live subscriber, measures:

- latency: from a ``writeActions`` request being sent (one action per batch, one batch after
  the other) to the ``next`` message carrying that action at the live subscriber (p50 and p99,
  ms). From the request, not the response: the write's NOTIFY goes with its commit, so the
  subscriber may well have the action before the writer has its answer;
- memory: the gateway process's resident memory (VmRSS) with the idle subscriptions open, less
  the same before any was opened, divided by N (KiB per idle subscription);
- idle CPU: the gateway process's CPU time (user + system) over ``--idle-seconds`` while
  nothing is written, divided by that time (cores).

The gateway runs as a separate process (``gateway serve``) on a fresh database that is dropped
at the end, on failure too. Every idle user has one action in the log before it subscribes
(seeded with COPY straight into the log table, which is much faster than N writes): the backlog
batch that comes back shows that its subscription is registered and caught up. The run checks
that every written action reaches the live subscriber exactly once and that no idle subscriber
receives anything after its backlog. Run from the repository root:

    .venv/bin/python bench/live.py [--subscribers 100,1000] [--batches 200] [--postgres-url URL]
    .venv/bin/python bench/live.py --subscribers 10000,50000 --per-connection 50

The PostgreSQL URL (default ``postgresql://postgres@127.0.0.1:5432/postgres``, or
``GATEWAY_BENCH_POSTGRES_URL``) names a database to connect to for CREATE/DROP DATABASE; the
user needs the CREATEDB privilege.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import secrets
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
import websockets
from common import (
    add_postgres_option,
    check,
    create_database,
    drop_database,
    stop,
    wait_answering,
    with_database,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.settings import Settings

DEFAULT_SUBSCRIBERS = (100, 1_000)
T = TypeVar("T")
PROJECT = "bench"
TABLE = "notes"
LIVE_USER = "live"
WRITER_DEVICE = "bench-writer"
READER_DEVICE = "bench-reader"
SEED_DEVICE = "bench-seed"
JWT_SECRET = "bench-secret-" + "x" * 40
PROTOCOL = "graphql-transport-ws"
WARMUP_BATCHES = 10  # written and checked before each measurement, not timed
CONCURRENCY = 8  # connections opened at once
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 60.0
WS_TIMEOUT_SECONDS = 30.0
# A lost wake-up is covered by the gateway's 30 s re-read: wait longer than that.
DELIVERY_TIMEOUT_SECONDS = 60.0
# After the last batch, how long to wait for a duplicate or a stray message.
GRACE_SECONDS = 1.0
RSS_SETTLE_SECONDS = 5.0

CREATE_PROJECT = """
mutation ($code: String!) { createProject(code: $code, name: "Benchmark", open: true) { code } }
"""
DEFINE_TABLE = """
mutation ($project: String!, $name: String!, $fields: [FieldInput!]!) {
  defineTable(project: $project, name: $name, fields: $fields) { name }
}
"""
WRITE_ACTIONS = """
mutation ($project: String!, $actions: [ActionInput!]!, $user: String, $deviceId: String) {
  writeActions(project: $project, actions: $actions, user: $user, deviceId: $deviceId) {
    accepted duplicates
  }
}
"""
# snapshot: false: the idle users' backlogs are seeded into the log only (no records), and the
# bench measures live delivery, not a first sync.
SUBSCRIBE = """
subscription ($project: String!, $user: String, $deviceId: String) {
  databaseActions(project: $project, user: $user, deviceId: $deviceId, snapshot: false) {
    actions { recordId } progress { table cursor } hasMore
  }
}
"""


@dataclass(frozen=True, slots=True)
class Row:
    subscribers: int
    batches: int
    p50_ms: float
    p99_ms: float
    kib_per_subscription: float
    rss_kib: int
    open_seconds: float
    idle_cores: float | None  # None: not measured


# --- database ---------------------------------------------------------------------------------


# --- the gateway as a separate process --------------------------------------------------------


def raise_fd_limit() -> None:
    """Raise the soft limit on open files to the hard one: this process holds a WebSocket per
    subscriber, and the gateway, started after this, inherits the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("gateway")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]
    return [*command, "serve", "--port", str(port), "--log-level", "warning"]


def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user and system (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """The process's resident memory (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


async def settled_rss_kib(pid: int) -> int:
    """VmRSS once it stopped changing (three equal readings 0.2 s apart), or after a while."""
    deadline = time.monotonic() + RSS_SETTLE_SECONDS
    readings = [rss_kib(pid)]
    while time.monotonic() < deadline and not (len(readings) >= 3 and len(set(readings[-3:])) == 1):
        await asyncio.sleep(0.2)
        readings.append(rss_kib(pid))
    return readings[-1]


@dataclass(frozen=True, slots=True)
class Gateway:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


@asynccontextmanager
async def running_gateway(
    database_url: str, settings: Mapping[str, str] | None = None
) -> AsyncIterator[Gateway]:
    """``gateway serve`` in a subprocess, once /readyz answers 200; terminated on exit.
    ``settings`` adds ``GATEWAY_*`` variables to its environment."""
    port = free_port()
    env = os.environ | {
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        # The benchmark's clients are the load: the per-user rate limit would measure itself.
        "GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        **(settings or {}),
    }
    process = await asyncio.create_subprocess_exec(
        *gateway_command(port), env=env, stdout=asyncio.subprocess.DEVNULL
    )
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        await wait_answering(
            process, "the gateway", lambda http: http.get(ready), START_TIMEOUT_SECONDS
        )
        yield Gateway(pid=process.pid, port=port)
    finally:
        await stop(process, STOP_TIMEOUT_SECONDS)


class GraphQLClient:
    """GraphQL over one keep-alive HTTP connection."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = orjson.dumps({"query": query, "variables": variables})
        response = await self.http.post(self.url, content=body, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        result = orjson.loads(response.content)
        if result.get("errors"):
            raise RuntimeError(f"GraphQL errors: {result['errors']}")
        return result["data"]


# --- subscriptions over graphql-transport-ws --------------------------------------------------


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), WS_TIMEOUT_SECONDS))
    return message


async def connect(ws_url: str, token: str) -> ClientConnection:
    """An acknowledged graphql-transport-ws connection. The client sends no keep-alive pings of
    its own (the gateway's uvicorn pings every 20 s)."""
    ws = await websockets.connect(
        ws_url, subprotocols=[PROTOCOL], ping_interval=None, open_timeout=WS_TIMEOUT_SECONDS
    )
    try:
        await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        ack = await receive(ws)
        check(ack["type"] == "connection_ack", f"expected connection_ack, got {ack}")
    except BaseException:
        await ws.close()
        raise
    return ws


async def start(ws: ClientConnection, operation_id: str, variables: dict[str, Any]) -> None:
    """One ``databaseActions`` subscription on the connection."""
    payload = {"query": SUBSCRIBE, "variables": variables}
    await send(ws, {"type": "subscribe", "id": operation_id, "payload": payload})


def record_ids(message: dict[str, Any]) -> list[str]:
    """The recordIds of a ``next`` message; raises on anything but a ``next`` with data."""
    check(message.get("type") == "next", f"expected a next message, got {message}")
    payload = message["payload"]
    check(not payload.get("errors"), f"subscription errors: {payload.get('errors')}")
    return [a["recordId"] for a in payload["data"]["databaseActions"]["actions"]]


@dataclass(eq=False, slots=True)
class IdleConnection:
    """A connection whose subscriptions (one per user) must stay silent after their backlogs:
    whatever it receives later is kept in ``stray`` (a ping is answered)."""

    users: list[str]
    ws: ClientConnection
    stray: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def watch(self) -> None:
        try:
            async for raw in self.ws:
                message = orjson.loads(raw)
                if message.get("type") == "ping":
                    await send(self.ws, {"type": "pong"})
                else:
                    self.stray.append(str(raw)[:300])
        except ConnectionClosed as exc:
            self.stray.append(f"connection closed: {exc}")
        else:
            self.stray.append("connection closed")


async def open_idle(ws_url: str, token: str, seeded: dict[str, str]) -> IdleConnection:
    """One connection subscribing for each of ``seeded``'s users (user: its seeded record id),
    all at once; returns once every backlog, that one action, came back."""
    ws = await connect(ws_url, token)
    try:
        expected: dict[str, tuple[str, str]] = {}
        for n, (user, record_id) in enumerate(seeded.items(), start=1):
            expected[str(n)] = (user, record_id)
            await start(ws, str(n), {"project": PROJECT, "user": user})
        while expected:
            message = await receive(ws)
            if message.get("type") == "ping":
                await send(ws, {"type": "pong"})
                continue
            user, record_id = expected.pop(str(message.get("id")), ("?", "?"))
            backlog = record_ids(message)
            check(backlog == [record_id], f"{user}: backlog {backlog}, not its seeded action")
    except BaseException:
        await ws.close()
        raise
    idle = IdleConnection(list(seeded), ws)
    idle.task = asyncio.create_task(idle.watch())
    return idle


async def close_idle(idle: IdleConnection) -> None:
    await idle.ws.close()
    if idle.task is not None:
        idle.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await idle.task


class LiveSubscriber:
    """The live user's subscription: when each action arrived, and how often."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counts: Counter[str] = Counter()
        self.others: list[str] = []
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, token: str) -> LiveSubscriber:
        ws = await connect(ws_url, token)
        try:
            await start(ws, "1", {"project": PROJECT, "deviceId": READER_DEVICE})
        except BaseException:
            await ws.close()
            raise
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()
                message = orjson.loads(raw)
                if message.get("type") == "ping":
                    await send(self.ws, {"type": "pong"})
                    continue
                if message.get("type") != "next" or message["payload"].get("errors"):
                    self.others.append(str(raw)[:300])
                    continue
                for record_id in record_ids(message):
                    self.counts[record_id] += 1
                    waiting = self._waiting.pop(record_id, None)
                    if waiting is not None and not waiting.done():
                        waiting.set_result(arrived)
        except ConnectionClosed as exc:
            self.others.append(f"connection closed: {exc}")
        finally:
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(
                        RuntimeError(f"the live subscription ended: {self.others}")
                    )

    def expect(self, record_id: str) -> asyncio.Future[float]:
        """A future for the time (``perf_counter``) the action arrives; ask before writing it."""
        waiting: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[record_id] = waiting
        return waiting

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


# --- the workload -----------------------------------------------------------------------------


def note(user: str, record_id: str) -> dict[str, Any]:
    return {
        "table": TABLE,
        "user": user,
        "action": "INSERT",
        "recordId": record_id,
        "jsonData": orjson.dumps({"text": f"note {record_id[:8]}"}).decode(),
        "time": int(time.time() * 1000),
        "order": 0,
    }


async def write_one(client: GraphQLClient, user: str, record_id: str, device: str) -> None:
    result = (
        await client.data(
            WRITE_ACTIONS,
            project=PROJECT,
            actions=[note(user, record_id)],
            user=user,
            deviceId=device,
        )
    )["writeActions"]
    check(result["accepted"] == [0] and not result["duplicates"], f"write: {result}")


async def set_up_project(client: GraphQLClient) -> None:
    await client.data(CREATE_PROJECT, code=PROJECT)
    fields = [{"name": "text", "type": "STRING", "required": True}]
    await client.data(DEFINE_TABLE, project=PROJECT, name=TABLE, fields=fields)


async def bounded(calls: list[Coroutine[Any, Any, T]], limit: int) -> list[T]:
    """Await the coroutines, at most ``limit`` at a time; the results in order. When one
    fails, the others are cancelled."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await call

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(call)) for call in calls]
    return [task.result() for task in tasks]


def idle_user(index: int) -> str:
    return f"idle-{index}"


async def seed(database_url: str, count: int) -> list[str]:
    """One action per idle user, for its subscription's backlog: COPYed straight into the log
    (the ``xid`` column takes its default, the writing transaction's id, as the writer's rows
    do), since N single-action writes would take minutes at 50,000."""
    record_ids_ = [secrets.token_hex(16) for _ in range(count)]
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        project_id, table_id = await conn.fetchrow(
            "SELECT p.id, t.id FROM projects p JOIN project_tables t ON t.project_id = p.id"
            " WHERE p.code = $1 AND t.name = $2",
            PROJECT,
            TABLE,
        )
        now, millis = datetime.now(UTC), int(time.time() * 1000)
        rows = [
            (
                project_id,
                table_id,
                idle_user(i),
                "INSERT",
                record_id,
                orjson.dumps({"text": f"note {record_id[:8]}"}).decode(),
                millis,
                0,
                SEED_DEVICE,
                now,
            )
            for i, record_id in enumerate(record_ids_)
        ]
        columns = [
            "project_id",
            "table_id",
            "user_id",
            "action",
            "record_id",
            "json_data",
            "time",
            "action_order",
            "device_id",
            "stored_at",
        ]
        await conn.copy_records_to_table("actions", records=rows, columns=columns)
    finally:
        await conn.close()
    return record_ids_


async def latencies(
    writer: GraphQLClient, live: LiveSubscriber, batches: int, written: list[str]
) -> list[float]:
    """Write ``batches`` single-action batches as the live user, each after the previous one
    arrived and was answered; the seconds from each request being sent to the arrival."""
    seconds: list[float] = []
    for _ in range(batches):
        record_id = secrets.token_hex(16)
        arrival = live.expect(record_id)
        sent = time.perf_counter()
        await write_one(writer, LIVE_USER, record_id, WRITER_DEVICE)
        written.append(record_id)
        seconds.append(await asyncio.wait_for(arrival, DELIVERY_TIMEOUT_SECONDS) - sent)
    return seconds


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def idle_cores(pid: int, seconds: float) -> float:
    """The gateway's CPU time over ``seconds`` of nothing written, per second of them."""
    before, started = cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - started)


# --- running it -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    counts: list[int]
    batches: int
    per_connection: int  # idle subscriptions per WebSocket connection
    idle_seconds: float  # 0: idle CPU not measured
    poll_seconds: float | None  # GATEWAY_LIVE_POLL_SECONDS; None: the gateway's default

    def gateway_settings(self) -> dict[str, str]:
        connections = math.ceil(max(self.counts) / self.per_connection)
        settings = {
            "GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION": str(max(50, self.per_connection)),
            "GATEWAY_MAX_CONNECTIONS": str(max(2048, connections + 100)),
        }
        if self.poll_seconds is not None:
            settings["GATEWAY_LIVE_POLL_SECONDS"] = str(self.poll_seconds)
        return settings


@dataclass(slots=True)
class Bench:
    gateway: Gateway
    tokens: TokenService
    writer: GraphQLClient
    live: LiveSubscriber
    seeds: list[str]
    baseline_kib: int
    options: Options
    idle: list[IdleConnection] = field(default_factory=list)
    opened: int = 0
    written: list[str] = field(default_factory=list)

    def token(self, first: int) -> str:
        """One subscription per connection: its user's own token (a patient); more: an
        admin's, who may read every idle user's data."""
        if self.options.per_connection == 1:
            return self.tokens.issue(idle_user(first), Role.PATIENT)
        return self.tokens.issue("bench-idle", Role.ADMIN)

    async def open_idle_up_to(self, count: int) -> float:
        started = time.perf_counter()
        step = self.options.per_connection
        opening = [
            open_idle(
                self.gateway.ws_url,
                self.token(first),
                {idle_user(i): self.seeds[i] for i in range(first, min(first + step, count))},
            )
            for first in range(self.opened, count, step)
        ]
        self.idle += await bounded(opening, CONCURRENCY)
        self.opened = count
        return time.perf_counter() - started

    async def row(self, subscribers: int) -> Row:
        open_seconds = await self.open_idle_up_to(subscribers)
        rss = await settled_rss_kib(self.gateway.pid)
        cores = None
        if self.options.idle_seconds > 0:
            cores = await idle_cores(self.gateway.pid, self.options.idle_seconds)
        batches = self.options.batches
        await latencies(self.writer, self.live, WARMUP_BATCHES, self.written)
        seconds = await latencies(self.writer, self.live, batches, self.written)
        return Row(
            subscribers=subscribers,
            batches=batches,
            p50_ms=percentile(seconds, 0.50) * 1000,
            p99_ms=percentile(seconds, 0.99) * 1000,
            kib_per_subscription=(rss - self.baseline_kib) / subscribers,
            rss_kib=rss,
            open_seconds=open_seconds,
            idle_cores=cores,
        )

    async def verify(self) -> None:
        await asyncio.sleep(GRACE_SECONDS)
        counts = self.live.counts
        check(not self.live.others, f"the live subscriber got other messages: {self.live.others}")
        check(len(self.written) == len(set(self.written)), "record ids must be distinct")
        missing = [r for r in self.written if counts[r] == 0]
        check(not missing, f"{len(missing)} actions never reached the live subscriber")
        repeated = {r: n for r, n in counts.items() if n > 1}
        check(not repeated, f"actions delivered more than once: {list(repeated.items())[:5]}")
        check(set(counts) == set(self.written), "the live subscriber got actions never written")
        stray = [(i.users[0], i.stray) for i in self.idle if i.stray]
        check(not stray, f"{len(stray)} idle connections received messages: {stray[:3]}")


async def measure(database_url: str, options: Options) -> tuple[int, list[Row]]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        jwt_secret=JWT_SECRET,
    )
    tokens = TokenService(settings)
    async with (
        running_gateway(database_url, options.gateway_settings()) as gateway,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http,
    ):
        admin = GraphQLClient(http, gateway.url, tokens.issue("bench-admin", Role.ADMIN))
        await set_up_project(admin)
        seeds = await seed(database_url, max(options.counts))
        live_token = tokens.issue(LIVE_USER, Role.PATIENT)
        live = await LiveSubscriber.open(gateway.ws_url, live_token)
        bench: Bench | None = None
        try:
            writer = GraphQLClient(http, gateway.url, live_token)
            written: list[str] = []
            # Warm the write and live paths up before the memory baseline.
            await latencies(writer, live, WARMUP_BATCHES, written)
            baseline = await settled_rss_kib(gateway.pid)
            bench = Bench(gateway, tokens, writer, live, seeds, baseline, options, written=written)
            rows = []
            for count in options.counts:
                rows.append(await bench.row(count))
                print(table(rows[-1:]), flush=True)  # each row as it comes: a run may fail later
            await bench.verify()
            return baseline, rows
        finally:
            await live.close()
            if bench is not None:
                await asyncio.gather(*(close_idle(i) for i in bench.idle))


async def run(admin_url: str, options: Options) -> tuple[int, list[Row]]:
    database = f"gateway_bench_{secrets.token_hex(4)}"
    await create_database(admin_url, database)
    try:
        return await measure(with_database(admin_url, database, "postgresql+asyncpg"), options)
    finally:
        await drop_database(admin_url, database)


def table(rows: list[Row]) -> str:
    header = (
        "idle subscribers",
        "batches",
        "p50 ms",
        "p99 ms",
        "KiB per idle subscription",
        "idle CPU (cores)",
    )
    cells = [
        (
            f"{r.subscribers:,}",
            f"{r.batches:,}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.kib_per_subscription:.1f}",
            "-" if r.idle_cores is None else f"{r.idle_cores:.3f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in cells)])


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not counts or any(n < 1 for n in counts) or counts != sorted(set(counts)):
        raise argparse.ArgumentTypeError("give increasing positive numbers, e.g. 100,1000")
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--subscribers",
        type=parse_counts,
        default=list(DEFAULT_SUBSCRIBERS),
        help="idle subscriber counts to measure at, increasing (default 100,1000)",
    )
    parser.add_argument(
        "--batches", type=int, default=200, help="timed batches per row (default 200)"
    )
    parser.add_argument(
        "--per-connection",
        type=int,
        default=1,
        help="idle subscriptions per WebSocket connection (default 1; more than one "
        "subscribe as an admin, each for another idle user)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=0.0,
        help="measure the gateway's CPU over this long with nothing written (default 0: not "
        "measured; take at least GATEWAY_LIVE_POLL_SECONDS)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="the gateway's GATEWAY_LIVE_POLL_SECONDS (default: its own, 30)",
    )
    add_postgres_option(parser)
    args = parser.parse_args()
    if args.batches < 1:
        parser.error("--batches must be at least 1")
    if args.per_connection < 1:
        parser.error("--per-connection must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    raise_fd_limit()
    options = Options(
        args.subscribers, args.batches, args.per_connection, args.idle_seconds, args.poll_seconds
    )
    baseline, rows = asyncio.run(run(args.postgres_url, options))
    print(table(rows))
    rss = ", ".join(f"{r.rss_kib / 1024:.1f} MiB with {r.subscribers:,}" for r in rows)
    print(f"gateway RSS: {baseline / 1024:.1f} MiB before the idle subscriptions, {rss}")
    opened = ", ".join(f"{r.open_seconds:.1f} s to reach {r.subscribers:,}" for r in rows)
    print(
        f"opening idle subscriptions ({CONCURRENCY} connections at a time, "
        f"{args.per_connection} subscriptions each): {opened}"
    )


if __name__ == "__main__":
    main()
