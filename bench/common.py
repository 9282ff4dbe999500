"""What the benchmarks share: correctness checks and scratch PostgreSQL databases."""

from __future__ import annotations

import argparse
import os
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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
