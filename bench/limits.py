"""How fast the gateway refuses query bombs, and whether other clients notice.

A `gateway serve` process on a fresh SQLite file; anonymous bombs over HTTP:

- tokens: 100,000 aliases of ``__typename`` (a 1.3 MB document, refused by the token limit);
- aliases: 200 aliases of ``__schema`` (refused by the alias limit);
- fragments: fragments that each spread the next twice, 2^40 fields once expanded (cost);
- introspection: 3 aliases of ``__schema`` (over the anonymous cost budget).

The anchor is ``/healthz`` measured in the same run: each bomb's refusal time is given as a
ratio to it. Then ``/healthz`` is measured again while another client sends bombs back to back,
to show that one anonymous client cannot stall the others.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from common import check
from live import running_gateway

ROUNDS = 30
HEALTH_ROUNDS = 200


def aliases(field: str, n: int) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(n)) + " }"


def fragment_bomb(levels: int = 40) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 } " + " ".join(fragments)


BOMBS = {
    "tokens: 100,000 aliases of __typename": aliases("__typename", 100_000),
    "aliases: 200 aliases of __schema": aliases("__schema { queryType { name } }", 200),
    "cost: a fragment bomb (2^40 fields)": fragment_bomb(),
    "cost: introspection 3 times (anonymous)": aliases("__schema { queryType { name } }", 3),
}


async def timed(call: Callable[[], Awaitable[None]], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def measure() -> list[tuple[str, float, float]]:
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        database = f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        async with running_gateway(database) as gateway, httpx.AsyncClient(timeout=60) as http:
            health = gateway.url.replace("/graphql", "/healthz")

            async def healthz() -> None:
                check((await http.get(health)).status_code == 200, "/healthz must answer 200")

            alone = await timed(healthz, HEALTH_ROUNDS)
            rows.append(("/healthz (the anchor)", statistics.median(alone), p99(alone)))
            for name, bomb in BOMBS.items():

                async def refuse(bomb: str = bomb) -> None:
                    body = (await http.post(gateway.url, json={"query": bomb})).json()
                    codes = {e["extensions"]["code"] for e in body["errors"]}
                    check(codes == {"LIMIT_EXCEEDED"}, f"refused with {codes}")

                times = await timed(refuse, ROUNDS)
                rows.append((name, statistics.median(times), p99(times)))

            # /healthz while another client sends the largest bomb back to back.
            stop = asyncio.Event()

            async def bombard() -> None:
                async with httpx.AsyncClient(timeout=60) as other:
                    bomb = next(iter(BOMBS.values()))
                    while not stop.is_set():
                        await other.post(gateway.url, json={"query": bomb})

            attacker = asyncio.create_task(bombard())
            await asyncio.sleep(0.5)
            busy = await timed(healthz, HEALTH_ROUNDS)
            stop.set()
            await attacker
            rows.append(("/healthz during a bombardment", statistics.median(busy), p99(busy)))
    return rows


def report(rows: list[tuple[str, float, float]]) -> str:
    anchor = rows[0][1]
    lines = [
        "| measure | median ms | p99 ms | median / /healthz |",
        "|---|---|---|---|",
    ]
    for name, median, worst in rows:
        lines.append(f"| {name} | {median:.2f} | {worst:.2f} | {median / anchor:.1f} |")
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None).parse_args()
    print(report(asyncio.run(measure())))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
