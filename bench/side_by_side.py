"""The gateway side by side with PostGraphile 5 and with floors written with asyncpg + orjson.

On one fresh PostgreSQL database (dropped at the end, on failure too):

- the gateway (``gateway serve`` in a subprocess) holds N actions of one patient, written with
  its own ``writeActions``;
- PostGraphile 5 (``bench/postgraphile/server.mjs``, Node 22 from the npm package ``node``)
  serves the schema ``postgraphile``: a copy of those rows with the pull's columns, the
  primary key ``id``, ANALYZEd (this PostgreSQL may run without autovacuum);
- the floors read the gateway's ``actions`` table, or write copies of its indexed tables,
  with asyncpg, and serialize with orjson, in this process.

Each round measures every workload on the gateway, then PostGraphile, then the floor; the table
shows the median of the rounds and their spread (min-max):

- pull: every row in pages of 1,000 over one keep-alive HTTP connection (gateway
  ``actions(maxCount: 1000)`` following its progress; PostGraphile ``allActions(first: 1000,
  after: <cursor>)`` in primary key order; floor: keyset pages on ``(xid, id)``), rows/s;
- a page of 10,000 rows: the median latency of a few requests, ms;
- one row at 16 concurrent keep-alive connections (gateway ``{ me { id } }`` and
  ``syncRun(id)``; PostGraphile ``actionByRowId``; floor: a pool of 16 asyncpg connections
  reading that row by primary key), req/s;
- ingest: gateway ``writeActions`` in batches of 1,000 new records, one device; floors: the
  rows it stored (actions and records) written again into copies of the same tables with the
  same indexes, one transaction per 1,000, with COPY and with ``executemany`` INSERTs,
  actions/s;
- the embedded default: a second gateway on a SQLite file (in a temporary directory) holding
  the same actions, pulled and written the same way, set against the gateway on PostgreSQL.

Run from the repository root, after ``npm ci --prefix bench/postgraphile``:

    .venv/bin/python bench/side_by_side.py [--actions 20000] [--ingest 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from common import (
    add_postgres_option,
    check,
    markdown_table,
    scratch_database,
    stop,
    wait_answering,
    with_database,
)
from live import JWT_SECRET, free_port, running_gateway
from sync_log import (
    ADD_MEMBER,
    BATCH,
    FLOOR_PAGE,
    HTTP_TIMEOUT_SECONDS,
    PROJECT,
    READ_ACTIONS,
    READER_DEVICE,
    USER,
    WRITE_ACTIONS,
    WRITER_DEVICE,
    GraphQLClient,
    floor,
    ingest,
    make_action,
    make_batches,
    pull,
    set_up_project,
)

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.settings import Settings

POSTGRAPHILE_DIR = Path(__file__).resolve().with_name("postgraphile")
NODE = POSTGRAPHILE_DIR / "node_modules" / ".bin" / "node"
SCHEMA = "postgraphile"  # PostgreSQL reserves the prefix pg_
INGEST_USER = "bench-ingest"  # its own user: the pulls read only USER's actions
BIG_PAGE = 10_000
BIG_PAGE_SAMPLES = 5  # requests per round, after one not timed
CONCURRENCY = 16
WARMUP_REQUESTS = 10  # per connection, before the timing
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0

PULL_POSTGRAPHILE = """
query ($first: Int!, $after: Cursor) {
  allActions(first: $first, after: $after, orderBy: PRIMARY_KEY_ASC) {
    nodes {
      tableName userId action recordId jsonData sampleTime time actionOrder source author deviceId
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ME = "{ me { id } }"
SYNC_RUN = "query ($id: Int!) { syncRun(id: $id) { id status } }"
ROW_POSTGRAPHILE = "query ($id: BigInt!) { actionByRowId(rowId: $id) { rowId recordId } }"
ROW_FLOOR = f"SELECT id, record_id FROM {SCHEMA}.actions WHERE id = $1"
CREATE_SYNC = """
mutation ($project: String!) { createSync(project: $project, name: "bench") { id } }
"""
START_SYNC_RUN = "mutation ($syncId: Int!) { startSyncRun(syncId: $syncId) { id } }"

# The pull's columns, in the gateway's order, with the table's name as the gateway returns it.
COPY_FOR_POSTGRAPHILE = f"""
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.actions AS
SELECT a.id, t.name AS table_name, a.user_id, a.action, a.record_id, a.json_data,
       a.sample_time, a.time, a.action_order, a.source, a.author, a.device_id
FROM actions a JOIN project_tables t ON t.id = a.table_id
WHERE a.user_id = '{USER}' AND NOT a.superseded
ORDER BY a.xid, a.id;
ALTER TABLE {SCHEMA}.actions ADD PRIMARY KEY (id);
"""
# The floors' ingest targets: the gateway's tables with their indexes, defaults and
# constraints (not the foreign keys), holding what the gateway's hold.
FLOOR_SCHEMAS = ("floor_copy", "floor_insert")
FLOOR_TABLES = ("actions", "records")


@dataclass(slots=True)
class Results:
    """Every round's value of each (measure, system)."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, measure: str, system: str, value: float) -> None:
        self.values.setdefault((measure, system), []).append(value)

    def get(self, measure: str, system: str) -> list[float]:
        return self.values.get((measure, system), [])


# --- PostGraphile -----------------------------------------------------------------------------


@asynccontextmanager
async def running_postgraphile(database_url: str) -> AsyncIterator[str]:
    """``server.mjs`` under Node 22 on a free port, once it answers a query; terminated on
    exit."""
    if not NODE.exists():
        raise SystemExit(f"{NODE} is missing: run `npm ci --prefix bench/postgraphile` first")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(NODE),
        str(POSTGRAPHILE_DIR / "server.mjs"),
        database_url,
        SCHEMA,
        str(port),
        cwd=POSTGRAPHILE_DIR,
        env=os.environ | {"GRAPHILE_ENV": "production"},  # as deployed, and no notice of it
        stdout=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    probe = {"query": "{ __typename }"}
    try:
        await wait_answering(
            process, "PostGraphile", lambda http: http.post(url, json=probe), START_TIMEOUT_SECONDS
        )
        yield url
    finally:
        await stop(process, STOP_TIMEOUT_SECONDS)


# --- HTTP at 16 connections -------------------------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection sending a prepared request: at 16 connections a
    general client (httpx) would be the bottleneck on 2 cores, so this one parses no more than
    the status, the length and the body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> bytes:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        check(status.split(" ", 2)[1] == "200", f"HTTP {status}")
        headers = dict(line.lower().split(": ", 1) for line in lines if line)
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        check(headers.get("transfer-encoding") == "chunked", f"no length: {headers}")
        body = b""
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
            body += (await self.reader.readexactly(size + 2))[:-2]
        await self.reader.readuntil(b"\r\n")
        return body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def raw_request(url: str, query: str, token: str | None = None, **variables: Any) -> bytes:
    parts = httpx.URL(url)
    body = orjson.dumps({"query": query, "variables": variables})
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def check_answer(body: bytes) -> None:
    result = orjson.loads(body)
    check(not result.get("errors") and all(result["data"].values()), f"answer: {result}")


async def concurrent_rate(port: int, request: bytes, total: int) -> float:
    """Requests per second of ``total`` requests over CONCURRENCY connections."""
    connections = [await RawConnection.open(port) for _ in range(CONCURRENCY)]
    try:
        for connection in connections:
            for _ in range(WARMUP_REQUESTS):
                check_answer(await connection.send(request))
        counter = itertools.count()

        async def work(connection: RawConnection) -> None:
            while next(counter) < total:
                check_answer(await connection.send(request))

        started = time.perf_counter()
        await asyncio.gather(*(work(connection) for connection in connections))
        return total / (time.perf_counter() - started)
    finally:
        for connection in connections:
            await connection.close()


async def floor_row_rate(database_url: str, row_id: int, total: int) -> float:
    """The same as concurrent_rate, straight from PostgreSQL with a pool of 16 connections."""
    async with asyncpg.create_pool(
        database_url, min_size=CONCURRENCY, max_size=CONCURRENCY
    ) as pool:
        counter = itertools.count()

        async def work() -> None:
            async with pool.acquire() as conn:
                statement = await conn.prepare(ROW_FLOOR)
                while next(counter) < total:
                    row = await statement.fetchrow(row_id)
                    check(row is not None, "the floor found no row")
                    orjson.dumps({"data": {"row": dict(row)}})

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(CONCURRENCY)))
        return total / (time.perf_counter() - started)


# --- pulls ------------------------------------------------------------------------------------


async def pull_postgraphile(client: GraphQLClient, expected: set[str]) -> float:
    """Rows/s of reading every row in pages of 1,000, following the connection's cursor."""
    record_ids: list[str] = []
    after: str | None = None
    started = time.perf_counter()
    while True:
        body = client.body(PULL_POSTGRAPHILE, first=BATCH, after=after)
        page = (await client.post(body))["allActions"]
        record_ids += [a["recordId"] for a in page["nodes"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    rate = len(record_ids) / (time.perf_counter() - started)
    check(set(record_ids) == expected and len(record_ids) == len(expected), "PostGraphile pull")
    return rate


async def median_ms(request: Callable[[], Awaitable[object]]) -> float:
    """The median latency of BIG_PAGE_SAMPLES requests, after one that is not timed."""
    await request()
    samples = []
    for _ in range(BIG_PAGE_SAMPLES):
        started = time.perf_counter()
        await request()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# --- ingest -----------------------------------------------------------------------------------


def ingest_batches(round_: int, total: int) -> list[list[dict[str, Any]]]:
    """New records of INGEST_USER for this round, as make_batches makes USER's."""
    rng = random.Random(f"ingest-{round_}")
    start_ms = int(time.time() * 1000) - total * 1_000
    first = round_ * total  # (time, order) distinct from the earlier rounds'
    actions = [make_action(first + i, start_ms, rng) | {"user": INGEST_USER} for i in range(total)]
    check(len({uuid.UUID(a["recordId"]) for a in actions}) == total, "record ids must be distinct")
    return [actions[i : i + BATCH] for i in range(0, total, BATCH)]


async def table_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns a writer sets: all but the log position, which the defaults compute."""
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows if r["column_name"] not in ("id", "xid")]


async def stored_rows(
    conn: asyncpg.Connection, columns: dict[str, list[str]], after: dict[str, int]
) -> dict[str, list[asyncpg.Record]]:
    """What the gateway stored for INGEST_USER after the given ids, per table, in id order."""
    return {
        table: await conn.fetch(
            f"SELECT {', '.join(columns[table])} FROM {table} "
            "WHERE user_id = $1 AND id > $2 ORDER BY id",
            INGEST_USER,
            after[table],
        )
        for table in FLOOR_TABLES
    }


async def last_ids(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {t}") for t in FLOOR_TABLES}


async def ingest_floor(
    conn: asyncpg.Connection,
    schema: str,
    columns: dict[str, list[str]],
    rows: dict[str, list[asyncpg.Record]],
) -> float:
    """Seconds of writing the rows again into ``schema``'s copies of the tables, 1,000 actions
    (and their records) per transaction, with COPY or with executemany."""
    count = len(rows["actions"])
    check(len(rows["records"]) == count, "one new record per action")
    inserts = {
        t: f"INSERT INTO {schema}.{t} ({', '.join(columns[t])}) "
        f"VALUES ({', '.join(f'${i + 1}' for i in range(len(columns[t])))})"
        for t in FLOOR_TABLES
    }
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        async with conn.transaction():
            for table in FLOOR_TABLES:
                chunk = [tuple(r) for r in rows[table][start : start + BATCH]]
                if schema == "floor_copy":
                    await conn.copy_records_to_table(
                        table, schema_name=schema, columns=columns[table], records=chunk
                    )
                else:
                    await conn.executemany(inserts[table], chunk)
    return time.perf_counter() - started


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    gateway: GraphQLClient
    ingest: GraphQLClient
    sqlite: GraphQLClient
    sqlite_ingest: GraphQLClient
    postgraphile: GraphQLClient
    token: str
    run_id: int
    row_id: int
    project_id: int
    expected: set[str]


def anonymous(client: GraphQLClient) -> GraphQLClient:
    """PostGraphile's Amber preset reads no token: send none."""
    del client.headers["Authorization"]
    return client


async def load(admin: GraphQLClient, client: GraphQLClient, total: int) -> tuple[set[str], int]:
    """The pulls' actions through writeActions, and one sync run to look up."""
    await set_up_project(admin)
    await admin.data(ADD_MEMBER, code=PROJECT, user=INGEST_USER)
    batches = make_batches(total)
    for batch in batches:
        await client.data(WRITE_ACTIONS, project=PROJECT, actions=batch, deviceId=WRITER_DEVICE)
    sync_id = (await client.data(CREATE_SYNC, project=PROJECT))["createSync"]["id"]
    run_id = (await client.data(START_SYNC_RUN, syncId=sync_id))["startSyncRun"]["id"]
    return {a["recordId"] for batch in batches for a in batch}, run_id


async def prepare_tables(conn: asyncpg.Connection) -> tuple[int, int]:
    """PostGraphile's copy and the floors' tables; ANALYZE, as autovacuum may be off."""
    await conn.execute(COPY_FOR_POSTGRAPHILE)
    for schema in FLOOR_SCHEMAS:
        await conn.execute(f"CREATE SCHEMA {schema}")
        for table in FLOOR_TABLES:
            await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE {table} INCLUDING ALL)")
            await conn.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {table}")
    await conn.execute("ANALYZE")
    project_id = await conn.fetchval("SELECT id FROM projects WHERE code = $1", PROJECT)
    row_id = await conn.fetchval(f"SELECT id FROM {SCHEMA}.actions ORDER BY id LIMIT 1 OFFSET 7")
    return project_id, row_id


async def one_round(
    s: Setup, conn: asyncpg.Connection, database_url: str, round_: int, args: argparse.Namespace
) -> Results:
    r = Results()
    total = len(s.expected)

    r.add("pull", "gateway", (await pull(s.gateway, s.expected)).rate)
    r.add("pull", "SQLite", (await pull(s.sqlite, s.expected)).rate)
    r.add("pull", "PostGraphile", await pull_postgraphile(s.postgraphile, s.expected))
    r.add("pull", "floor", (await floor(database_url, total)).rate)

    big = min(BIG_PAGE, total)
    gateway_big = s.gateway.body(
        READ_ACTIONS, project=PROJECT, deviceId=READER_DEVICE, maxCount=big
    )
    r.add("page", "gateway", await median_ms(lambda: s.gateway.post(gateway_big)))
    postgraphile_big = s.postgraphile.body(PULL_POSTGRAPHILE, first=big)
    r.add("page", "PostGraphile", await median_ms(lambda: s.postgraphile.post(postgraphile_big)))
    big_page = await conn.prepare(FLOOR_PAGE)

    async def floor_big() -> None:
        orjson.dumps([dict(row) for row in await big_page.fetch(s.project_id, USER, 0, 0, big)])

    r.add("page", "floor", await median_ms(floor_big))

    gateway_port = httpx.URL(s.gateway.url).port or 80
    me = raw_request(s.gateway.url, ME, s.token)
    r.add("me", "gateway", await concurrent_rate(gateway_port, me, args.requests))
    run = raw_request(s.gateway.url, SYNC_RUN, s.token, id=s.run_id)
    r.add("row", "gateway", await concurrent_rate(gateway_port, run, args.requests))
    lookup = raw_request(s.postgraphile.url, ROW_POSTGRAPHILE, id=str(s.row_id))
    port = httpx.URL(s.postgraphile.url).port or 80
    r.add("row", "PostGraphile", await concurrent_rate(port, lookup, args.requests))
    r.add("row", "floor", await floor_row_rate(database_url, s.row_id, args.requests))

    columns = {t: await table_columns(conn, t) for t in FLOOR_TABLES}
    before = await last_ids(conn)
    batches = ingest_batches(round_, args.ingest)
    r.add("ingest", "gateway", (await ingest(s.ingest, batches)).rate)
    r.add("ingest", "SQLite", (await ingest(s.sqlite_ingest, batches)).rate)
    stored = await stored_rows(conn, columns, before)
    check(len(stored["actions"]) == args.ingest, f"stored {len(stored['actions'])} actions")
    for schema, system in zip(FLOOR_SCHEMAS, ("COPY", "executemany"), strict=True):
        r.add("ingest", system, args.ingest / await ingest_floor(conn, schema, columns, stored))
    return r


async def measure(admin_url: str, database: str, args: argparse.Namespace) -> list[Results]:
    database_url = with_database(admin_url, database)
    tokens = TokenService(Settings(_env_file=None, jwt_secret=JWT_SECRET))  # type: ignore[call-arg]
    admin_token = tokens.issue("bench-admin", Role.ADMIN)
    token, ingest_token = tokens.issue(USER, Role.PATIENT), tokens.issue(INGEST_USER, Role.PATIENT)
    # A 10,000-row page is above the default GATEWAY_MAX_READ_BATCH of 1,000.
    settings = {"GATEWAY_MAX_READ_BATCH": str(BIG_PAGE)}
    async with (
        running_gateway(with_database(admin_url, database, "postgresql"), settings) as gateway,
        _sqlite_file() as sqlite_file,
        running_gateway(f"sqlite+aiosqlite:///{sqlite_file}", settings) as embedded,
        httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http,
    ):
        client = GraphQLClient(http, gateway.url, token)
        print(f"loading {args.actions:,} actions through writeActions ...", flush=True)
        expected, run_id = await load(
            GraphQLClient(http, gateway.url, admin_token), client, args.actions
        )
        sqlite = GraphQLClient(http, embedded.url, token)
        await load(GraphQLClient(http, embedded.url, admin_token), sqlite, args.actions)
        conn = await asyncpg.connect(database_url)
        try:
            project_id, row_id = await prepare_tables(conn)
            async with running_postgraphile(database_url) as postgraphile_url:
                setup = Setup(
                    gateway=client,
                    ingest=GraphQLClient(http, gateway.url, ingest_token),
                    sqlite=sqlite,
                    sqlite_ingest=GraphQLClient(http, embedded.url, ingest_token),
                    postgraphile=anonymous(GraphQLClient(http, postgraphile_url, "")),
                    token=token,
                    run_id=run_id,
                    row_id=row_id,
                    project_id=project_id,
                    expected=expected,
                )
                # A first round is not counted: it warms caches and Node's JIT compiler (the
                # first 2,000 lookups ran at half PostGraphile's later rate).
                print("warm-up round ...", flush=True)
                await one_round(setup, conn, database_url, 0, args)
                results = []
                for round_ in range(1, args.rounds + 1):
                    print(f"round {round_} of {args.rounds} ...", flush=True)
                    results.append(await one_round(setup, conn, database_url, round_, args))
                return results
        finally:
            await conn.close()


@asynccontextmanager
async def _sqlite_file() -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as directory:
        yield Path(directory) / "gateway.db"


async def run(admin_url: str, args: argparse.Namespace) -> list[Results]:
    async with scratch_database(admin_url) as database:
        return await measure(admin_url, database, args)


# --- the table --------------------------------------------------------------------------------

# (its label, the unit, the gateway's measure, the anchors' measure and systems). PostGraphile
# and the floor hold no caller: `me` is set against their one-row lookups.
ROWS = (
    ("pull, pages of 1,000", "rows/s", "pull", "pull", ("PostGraphile", "floor")),
    ("one 10,000-row page, p50", "ms", "page", "page", ("PostGraphile", "floor")),
    ("`me { id }`, 16 connections", "req/s", "me", "row", ("PostGraphile", "floor")),
    ("one row by id, 16 connections", "req/s", "row", "row", ("PostGraphile", "floor")),
    ("ingest, batches of 1,000", "actions/s", "ingest", "ingest", ("", "COPY")),
    ("ingest, batches of 1,000", "actions/s", "ingest", "ingest", ("", "executemany")),
)


def merge(rounds: list[Results]) -> Results:
    merged = Results()
    for result in rounds:
        for key, values in result.values.items():
            merged.values.setdefault(key, []).extend(values)
    return merged


def cell(values: list[float], unit: str) -> str:
    if not values:
        return "n/a"
    digits = 1 if unit == "ms" else 0
    median = f"{statistics.median(values):,.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def ratio(gateway: list[float], anchor: list[float]) -> str:
    if not gateway or not anchor:
        return "n/a"
    return f"{statistics.median(gateway) / statistics.median(anchor):.3f}"


def table(rounds: list[Results]) -> str:
    r = merge(rounds)
    header = ("measure", "unit", "PostGraphile", "floor", "gateway", "gw ÷ PG", "gw ÷ floor")
    lines = []
    for label, unit, key, anchor_key, (anchor, floor_system) in ROWS:
        gateway = r.get(key, "gateway")
        pg, fl = r.get(anchor_key, anchor), r.get(anchor_key, floor_system)
        floor_label = "" if floor_system == "floor" else f"{floor_system}: "
        lines.append(
            (
                label,
                unit,
                cell(pg, unit),
                floor_label + cell(fl, unit),
                cell(gateway, unit),
                ratio(gateway, pg),
                ratio(gateway, fl),
            )
        )
    return markdown_table(header, lines, left_columns=2)


def sqlite_table(rounds: list[Results]) -> str:
    """The embedded default against the gateway on PostgreSQL, in the same rounds."""
    r = merge(rounds)
    header = ("measure", "unit", "PostgreSQL", "SQLite", "SQLite ÷ PostgreSQL")
    lines = []
    for label, unit, key in (
        ("pull, pages of 1,000", "rows/s", "pull"),
        ("ingest, batches of 1,000", "actions/s", "ingest"),
    ):
        postgres, sqlite = r.get(key, "gateway"), r.get(key, "SQLite")
        row = (label, unit, cell(postgres, unit), cell(sqlite, unit), ratio(sqlite, postgres))
        lines.append(row)
    return markdown_table(header, lines, left_columns=2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--actions", type=int, default=20_000, help="rows pulled (default 20000)")
    parser.add_argument(
        "--ingest", type=int, default=10_000, help="actions written per round (default 10000)"
    )
    parser.add_argument(
        "--requests", type=int, default=3_000, help="one-row requests per round (default 3000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add_postgres_option(parser)
    args = parser.parse_args()
    for name in ("actions", "ingest", "requests", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    rounds = asyncio.run(run(args.postgres_url, args))
    print(
        f"{args.actions:,} rows pulled, {args.ingest:,} actions written and {args.requests:,} "
        f"one-row requests per round; medians of {args.rounds} rounds (min-max)"
    )
    print(table(rounds))
    print()
    print(sqlite_table(rounds))
    print("gw ÷ PG, gw ÷ floor: the gateway's median over the anchor's; above 1 the gateway is")
    print("faster, except for ms (latency), where above 1 it is slower")


if __name__ == "__main__":
    main()
