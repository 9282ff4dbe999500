"""What the benchmarks share: correctness checks and scratch PostgreSQL databases."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("GATEWAY_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a database to CREATE/DROP the benchmark database from "
        f"(default: $GATEWAY_BENCH_POSTGRES_URL or {DEFAULT_POSTGRES_URL})",
    )


def check(condition: bool, message: str) -> None:
    """A correctness check that ``python -O`` does not remove."""
    if not condition:
        raise AssertionError(message)


def with_database(url: str, name: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=scheme or parts.scheme, path=f"/{name}"))


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A new database ``gateway_bench_<random>``, dropped at the end, on failure too."""
    name = f"gateway_bench_{secrets.token_hex(4)}"
    await create_database(admin_url, name)
    try:
        yield name
    finally:
        await drop_database(admin_url, name)


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left_columns: int = 1
) -> str:
    """Aligned Markdown: the first ``left_columns`` columns left-justified, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if i < left_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


# --- servers in subprocesses ------------------------------------------------------------------


async def wait_answering(
    process: asyncio.subprocess.Process,
    name: str,
    ask: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    timeout_seconds: float,
) -> None:
    """Until ``ask`` gets a 200 from the server ``process`` started; fails if it exits."""
    deadline = time.monotonic() + timeout_seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} (see above)")
            with contextlib.suppress(httpx.TransportError):
                if (await ask(http)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer within {timeout_seconds} s")
            await asyncio.sleep(0.1)


async def stop(process: asyncio.subprocess.Process, timeout_seconds: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_seconds``."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
