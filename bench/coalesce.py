"""Benchmark of 16 concurrent single-batch writers against live subscribers, with and without
coalescing wake-ups (``GATEWAY_BUS_COALESCE_MS``), on PostgreSQL.

Each writer sends ``writeActions`` batches of one action, one after the other, all for the same
user; ``--subscribers`` subscriptions of that user (on one connection each, without a deviceId,
so that a wake-up costs a read and nothing else) receive them. For
each window (0: every message wakes the subscribers at once) a fresh gateway (``gateway serve``
in a subprocess) on a fresh database measures:

- writes/s: actions written per second of wall time, all writers together;
- gateway CPU ms per write: the gateway process's CPU time (user + system) over the run, per
  action written (the subscribers' reads included);
- messages per subscriber / commits: how many ``next`` messages a subscription received for
  the commits it was sent (1.00: one wake-up and one read per commit);
- p50 / p99 ms: from a write's request being sent to its action reaching the first subscriber.

Ratios between the rows are what it shows, not absolute figures: the numbers depend on the
machine. Every subscriber must receive every action exactly once (checked). Run from the
repository root (not part of the test suite):

    .venv/bin/python bench/coalesce.py [--windows 0,5,20] [--writers 16] [--batches 100]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import orjson
from common import add_postgres_option, check, create_database, drop_database, with_database
from live import (
    JWT_SECRET,
    PROJECT,
    GraphQLClient,
    connect,
    cpu_seconds,
    note,
    record_ids,
    running_gateway,
    send,
    set_up_project,
    start,
)
from websockets.asyncio.client import ClientConnection

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.settings import Settings

USER = "live"
DELIVERY_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Row:
    window_ms: float
    writes: int
    writes_per_second: float
    cpu_ms_per_write: float
    messages_per_commit: float
    p50_ms: float
    p99_ms: float


class Subscriber:
    def __init__(self, ws: ClientConnection, watch_times: bool) -> None:
        self.ws = ws
        self.messages = 0
        self.counts: Counter[str] = Counter()
        self.arrived: dict[str, float] = {}
        self._watch_times = watch_times
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            message = orjson.loads(raw)
            if message.get("type") == "ping":
                await send(self.ws, {"type": "pong"})
                continue
            ids = record_ids(message)
            if not ids:
                continue
            self.messages += 1
            for record_id in ids:
                self.counts[record_id] += 1
                if self._watch_times:
                    self.arrived.setdefault(record_id, now)


async def measure(database_url: str, window_ms: float, options: argparse.Namespace) -> Row:
    tokens = TokenService(Settings(_env_file=None, jwt_secret=JWT_SECRET))  # type: ignore[call-arg]
    admin, writer = tokens.issue("root", Role.ADMIN), tokens.issue(USER, Role.PATIENT)
    settings = {"GATEWAY_BUS_COALESCE_MS": str(window_ms), "GATEWAY_LIVE_POLL_SECONDS": "300"}
    async with (
        running_gateway(database_url, settings) as gateway,
        httpx.AsyncClient(timeout=60) as http,
    ):
        await set_up_project(GraphQLClient(http, gateway.url, admin))
        subscribers = []
        for n in range(options.subscribers):
            ws = await connect(gateway.ws_url, writer)
            # Without a deviceId: a wake-up costs the subscriber one read and nothing else (a
            # device's stream also records its run and status after each batch it receives).
            await start(ws, "1", {"project": PROJECT, "user": USER})
            subscribers.append(Subscriber(ws, watch_times=n == 0))
        await asyncio.sleep(1.0)  # subscribed and caught up (an empty log)
        sent: dict[str, float] = {}

        async def write(w: int) -> None:
            async with httpx.AsyncClient(timeout=60) as own:
                client = GraphQLClient(own, gateway.url, writer)
                for _ in range(options.batches):
                    record_id = secrets.token_hex(16)
                    sent[record_id] = time.perf_counter()
                    await client.data(
                        "mutation($a: [ActionInput!]!) { writeActions(project: "
                        f'"{PROJECT}", actions: $a, deviceId: "writer-{w}") {{ accepted }} }}',
                        a=[note(USER, record_id)],
                    )

        cpu_before, began = cpu_seconds(gateway.pid), time.perf_counter()
        await asyncio.gather(*(write(w) for w in range(options.writers)))
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        while any(len(s.counts) < len(sent) for s in subscribers):
            check(time.monotonic() < deadline, "not every action reached every subscriber")
            await asyncio.sleep(0.05)
        elapsed, cpu = time.perf_counter() - began, cpu_seconds(gateway.pid) - cpu_before
        await asyncio.sleep(0.5)  # a duplicate would show up meanwhile
        for s in subscribers:
            check(set(s.counts) == set(sent), "a subscriber missed an action or got a stranger")
            check(max(s.counts.values()) == 1, "a subscriber got an action twice")
            await s.ws.close()
            s.task.cancel()
        lags = sorted((subscribers[0].arrived[r] - sent[r]) * 1000 for r in sent)
        writes = len(sent)
        return Row(
            window_ms=window_ms,
            writes=writes,
            writes_per_second=writes / elapsed,
            cpu_ms_per_write=cpu * 1000 / writes,
            messages_per_commit=statistics.mean(s.messages for s in subscribers) / writes,
            p50_ms=lags[len(lags) // 2],
            p99_ms=lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        )


async def run(options: argparse.Namespace) -> list[Row]:
    rows = []
    for window in options.windows:
        name = f"gateway_bench_{secrets.token_hex(4)}"
        await create_database(options.postgres_url, name)
        try:
            url = with_database(options.postgres_url, name, "postgresql+asyncpg")
            rows.append(await measure(url, window, options))
            print(table(rows[-1:]), flush=True)
        finally:
            await drop_database(options.postgres_url, name)
    return rows


def table(rows: list[Row]) -> str:
    header = (
        "| window ms | writes | writes/s | gateway CPU ms/write | messages/commit "
        "| p50 ms | p99 ms |"
    )
    lines = [header, "|" + "|".join("---:" for _ in range(7)) + "|"]
    for r in rows:
        lines.append(
            f"| {r.window_ms:g} | {r.writes:,} | {r.writes_per_second:,.0f} | "
            f"{r.cpu_ms_per_write:.2f} | {r.messages_per_commit:.2f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_postgres_option(parser)
    parser.add_argument(
        "--windows",
        type=lambda text: [float(w) for w in text.split(",")],
        default=[0.0, 5.0],
        help="GATEWAY_BUS_COALESCE_MS values to compare (default 0,5)",
    )
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--batches", type=int, default=100, help="per writer")
    parser.add_argument("--subscribers", type=int, default=20)
    options = parser.parse_args()
    rows = asyncio.run(run(options))
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
