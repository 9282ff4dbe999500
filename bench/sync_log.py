"""Benchmark of the sync log over real HTTP, against PostgreSQL.

Measures, on a fresh database that is dropped at the end:

- ingest: ``writeActions`` in batches of 1,000 INSERTs (``--batch``; actions/s);
- pull: ``actions`` in pages of 1,000 (``maxCount: 1000``), following the returned progress
  until ``hasMore`` is false, read as another device (actions/s);
- floor: the same rows read straight from the ``actions`` table with asyncpg (the reader's
  columns, in its (xid, id) order, pages of 1,000 with a keyset on (xid, id)) and serialized
  with orjson, in one process (rows/s): what the pull could reach without the gateway.

The ingest is also timed per ``--segment`` actions (10,000 by default): every segment (the
first and the last when there are more than 20) shows whether writing slows down as the log
grows. ``--ingest-only`` skips the pull and
the floor (for logs of a million actions); ``--database sqlite`` runs the gateway on a SQLite
file in a temporary directory instead (no floor there).

The gateway runs in this process, under uvicorn in a thread on a free port; the client is one
keep-alive ``httpx.AsyncClient``. Run from the repository root:

    .venv/bin/python bench/sync_log.py [--actions 20000] [--postgres-url URL]
    .venv/bin/python bench/sync_log.py --actions 1000000 --ingest-only [--database sqlite]

The PostgreSQL URL (default ``postgresql://postgres@127.0.0.1:5432/postgres``, or
``GATEWAY_BENCH_POSTGRES_URL``) names a database to connect to for CREATE/DROP DATABASE; the
user needs the CREATEDB privilege.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import uvicorn
from common import (
    add_postgres_option,
    check,
    create_database,
    drop_database,
    markdown_table,
    with_database,
)

from gateway.app import create_app
from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.settings import Settings

BATCH = 1_000
PROJECT = "bench"
TABLE = "steps"
USER = "bench-user"
WRITER_DEVICE = "bench-writer"
READER_DEVICE = "bench-reader"
JWT_SECRET = "bench-secret-" + "x" * 40
START_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 120.0
SEED = 2024  # the same actions on every run
MAX_SEGMENT_ROWS = 20

CREATE_PROJECT = """
mutation ($code: String!) { createProject(code: $code, name: "Benchmark") { code } }
"""
ADD_MEMBER = """
mutation ($code: String!, $user: String!) { addProjectMember(project: $code, user: $user) { code } }
"""
DEFINE_TABLE = """
mutation ($project: String!, $name: String!, $fields: [FieldInput!]!) {
  defineTable(project: $project, name: $name, fields: $fields) { name hasUtcTime }
}
"""
WRITE_ACTIONS = """
mutation ($project: String!, $actions: [ActionInput!]!, $deviceId: String) {
  writeActions(project: $project, actions: $actions, deviceId: $deviceId) {
    accepted duplicates progress { table time order }
  }
}
"""
READ_ACTIONS = """
query ($project: String!, $deviceId: String, $progress: [ProgressInput!], $maxCount: Int!) {
  actions(project: $project, deviceId: $deviceId, progress: $progress, maxCount: $maxCount) {
    actions {
      table user action recordId jsonData sampleTime time order source author deviceId
    }
    progress { table cursor }
    hasMore
  }
}
"""
# The columns and order of gateway/sync/reader.py, with a keyset on (xid, id).
FLOOR_PAGE = """
SELECT xid, id, table_id, record_id, action, json_data, sample_time, time, action_order,
       author, device_id
FROM actions
WHERE project_id = $1 AND user_id = $2 AND (xid, id) > ($3, $4)
ORDER BY xid, id
LIMIT $5
"""


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


# --- database ---------------------------------------------------------------------------------


# --- the gateway under uvicorn ----------------------------------------------------------------


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[str]:
    """The gateway's GraphQL URL while it runs in a thread of this process."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start (see the log above)")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
        sock.close()


class GraphQLClient:
    """GraphQL over one keep-alive HTTP connection; bodies are encoded with orjson so that
    the client, which shares the process with the gateway, costs as little as possible."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    @staticmethod
    def body(query: str, **variables: Any) -> bytes:
        return orjson.dumps({"query": query, "variables": variables})

    async def post(self, body: bytes) -> dict[str, Any]:
        response = await self.http.post(self.url, content=body, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        result = orjson.loads(response.content)
        if result.get("errors"):
            raise RuntimeError(f"GraphQL errors: {result['errors']}")
        return result["data"]

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        return await self.post(self.body(query, **variables))


# --- the workload -----------------------------------------------------------------------------


async def set_up_project(client: GraphQLClient) -> None:
    """As production has it: a closed project, the benchmark's patient one of its members."""
    await client.data(CREATE_PROJECT, code=PROJECT)
    await client.data(ADD_MEMBER, code=PROJECT, user=USER)
    fields = [
        {"name": "utcTime", "type": "INT", "required": True},
        {"name": "value", "type": "FLOAT", "required": True},
        {"name": "note", "type": "STRING"},
    ]
    await client.data(DEFINE_TABLE, project=PROJECT, name=TABLE, fields=fields)


def make_action(index: int, start_ms: int, rng: random.Random) -> dict[str, Any]:
    utc_time = start_ms + index * 1_000
    data = {"utcTime": utc_time, "value": round(rng.uniform(0, 200), 3), "note": f"step {index}"}
    return {
        "table": TABLE,
        "user": USER,
        "action": "INSERT",
        "recordId": uuid.UUID(int=rng.getrandbits(128)).hex,
        "jsonData": orjson.dumps(data).decode(),
        "time": utc_time,
        "order": index,
    }


def make_batches(total: int, size: int = BATCH) -> list[list[dict[str, Any]]]:
    rng = random.Random(SEED)
    start_ms = int(time.time() * 1000) - total * 1_000
    actions = [make_action(i, start_ms, rng) for i in range(total)]
    return [actions[i : i + size] for i in range(0, total, size)]


async def ingest(
    client: GraphQLClient,
    batches: list[list[dict[str, Any]]],
    segments: list[Measure] | None = None,
    segment: int = 10_000,
) -> Measure:
    """Write every batch, each request's body encoded outside the timing; ``segments`` gets
    the rate of every ``segment`` actions written, in order."""
    written, seconds = 0, 0.0
    mark = (0, 0.0)  # where the current segment started: actions written, seconds
    for batch in batches:
        body = client.body(WRITE_ACTIONS, project=PROJECT, actions=batch, deviceId=WRITER_DEVICE)
        started = time.perf_counter()
        result = (await client.post(body))["writeActions"]
        seconds += time.perf_counter() - started
        check(len(result["accepted"]) == len(batch), f"accepted {len(result['accepted'])}")
        check(not result["duplicates"], f"duplicates: {result['duplicates'][:5]}")
        written += len(result["accepted"])
        if segments is not None and written - mark[0] >= segment:
            name = f"ingest: actions {mark[0]:,}-{written:,}"
            segments.append(Measure(name, written - mark[0], seconds - mark[1]))
            mark = (written, seconds)
    return Measure("ingest: writeActions over HTTP", written, seconds)


async def pull(client: GraphQLClient, expected: set[str]) -> Measure:
    """Read the log from the start as another device, page after page, and check that exactly
    the written actions came back."""
    record_ids: list[str] = []
    progress: list[dict[str, str]] | None = None
    started = time.perf_counter()
    while True:
        body = client.body(
            READ_ACTIONS, project=PROJECT, deviceId=READER_DEVICE, progress=progress, maxCount=BATCH
        )
        batch = (await client.post(body))["actions"]
        record_ids += [a["recordId"] for a in batch["actions"]]
        progress = [{"table": p["table"], "cursor": p["cursor"]} for p in batch["progress"]]
        if not batch["hasMore"]:
            break
    seconds = time.perf_counter() - started
    check(len(record_ids) == len(expected), f"pulled {len(record_ids)}, wrote {len(expected)}")
    check(set(record_ids) == expected, "the pull returned other actions than those written")
    return Measure("pull: actions over HTTP", len(record_ids), seconds)


async def floor(database_url: str, expected: int) -> Measure:
    """The pull's rows straight from PostgreSQL with asyncpg, each page serialized with orjson."""
    conn = await asyncpg.connect(database_url)
    try:
        project_id = await conn.fetchval("SELECT id FROM projects WHERE code = $1", PROJECT)
        page = await conn.prepare(FLOOR_PAGE)
        count, xid, id_ = 0, 0, 0
        started = time.perf_counter()
        while True:
            rows = await page.fetch(project_id, USER, xid, id_, BATCH)
            orjson.dumps([dict(row) for row in rows])
            count += len(rows)
            if len(rows) < BATCH:
                break
            xid, id_ = rows[-1]["xid"], rows[-1]["id"]
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    check(count == expected, f"the floor read {count} rows, {expected} were written")
    return Measure("floor: asyncpg + orjson", count, seconds)


# --- running it -------------------------------------------------------------------------------


def gateway_settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        migrate_on_start=True,
    )


async def measure(
    database_url: str, args: argparse.Namespace, floor_url: str | None
) -> list[Measure]:
    """Ingest (its overall rate, then its first and last segments), then unless
    ``--ingest-only`` the pull, and the floor when ``floor_url`` (PostgreSQL) is given."""
    total = args.actions
    settings = gateway_settings(database_url)
    tokens = TokenService(settings)
    admin, token = tokens.issue("bench-admin", Role.ADMIN), tokens.issue(USER, Role.PATIENT)
    batches = make_batches(total, args.batch)
    expected = {a["recordId"] for batch in batches for a in batch}
    check(len(expected) == total, "record ids must be distinct")
    async with (
        running_gateway(settings) as url,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http,
    ):
        await set_up_project(GraphQLClient(http, url, admin))
        client = GraphQLClient(http, url, token)
        segments: list[Measure] = []
        written = await ingest(client, batches, segments, args.segment)
        # Every segment when they fit a screen, else the first and the last.
        shown = segments if len(segments) <= MAX_SEGMENT_ROWS else [segments[0], segments[-1]]
        measures = [written, *shown]
        if args.ingest_only:
            return measures
        measures.append(await pull(client, expected))
    if floor_url is not None:
        measures.append(await floor(floor_url, written.count))
    return measures


async def run(args: argparse.Namespace) -> list[Measure]:
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gateway_bench_") as directory:
            return await measure(f"sqlite+aiosqlite:///{directory}/bench.db", args, None)
    admin_url = args.postgres_url
    database = f"gateway_bench_{secrets.token_hex(4)}"
    await create_database(admin_url, database)
    try:
        url = with_database(admin_url, database, "postgresql+asyncpg")
        return await measure(url, args, with_database(admin_url, database))
    finally:
        await drop_database(admin_url, database)


def table(measures: list[Measure]) -> str:
    header = ("measure", "count", "seconds", "per second")
    rows = [(m.name, f"{m.count:,}", f"{m.seconds:.3f}", f"{m.rate:,.0f}") for m in measures]
    return markdown_table(header, rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--actions", type=int, default=20_000, help="actions to write and read (default 20000)"
    )
    parser.add_argument(
        "--segment", type=int, default=10_000, help="actions per timed segment (default 10000)"
    )
    parser.add_argument(
        "--batch", type=int, default=BATCH, help=f"actions per write (default {BATCH})"
    )
    parser.add_argument("--ingest-only", action="store_true", help="skip the pull and the floor")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    add_postgres_option(parser)
    args = parser.parse_args()
    if args.actions < 1:
        parser.error("--actions must be at least 1")
    return args


def main() -> None:
    measures = asyncio.run(run(parse_args()))
    print(table(measures))
    pulled = next((m for m in measures if m.name.startswith("pull")), None)
    floored = next((m for m in measures if m.name.startswith("floor")), None)
    if pulled is not None and floored is not None:
        print(
            f"pull / floor: {pulled.rate / floored.rate:.3f} "
            f"(the gateway's pull reaches {pulled.rate / floored.rate:.1%} of the floor)"
        )


if __name__ == "__main__":
    main()
