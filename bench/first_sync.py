"""Benchmark of a device's first sync: from a snapshot of the records, against replaying the log.

On a fresh PostgreSQL database (dropped at the end), a log of ``--records`` x ``--changes``
actions is loaded straight with SQL (each record: one INSERT, then UPDATEs; the log interleaves
the records, as devices would write them over time) together with the records' current state,
then ANALYZEd. A new device then reads everything in pages of ``--page`` (the domain's
``read_actions``, in this process, as the ``actions`` query and the subscription call it):

- snapshot: the gateway's first sync, one INSERT per record as it is now;
- log: the same read with ``ReadRequest.snapshot=False``, every action replayed (merged within
  each page, as before).

Each is run ``--rounds`` times, interleaved, as a new device every time; the table gives the
actions moved, the reads, and the median seconds (min-max). Both must end with the same records.

    .venv/bin/python bench/first_sync.py [--records 100000] [--changes 10] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import asyncpg
from common import add_postgres_option, check, markdown_table, scratch_database, with_database

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.migrate import upgrade
from gateway.sync import projects
from gateway.sync.actions import ActionType
from gateway.sync.reader import ReadFilter, ReadRequest, read_actions
from gateway.sync.tables import FieldSpec, FieldType, build_table_spec

ADMIN = Principal("root", Role.ADMIN)
ALICE = Principal("alice", Role.PATIENT)
PROJECT = "bench"


@dataclass
class Pass:
    actions: int
    reads: int
    seconds: float
    records: dict[str, dict[str, object]]


async def load(admin_url: str, name: str, records: int, changes: int) -> None:
    """The project, and ``records`` x ``changes`` actions with the records they leave."""
    db = Database(with_database(admin_url, name, "postgresql+asyncpg"))
    try:
        await upgrade(db)
        await projects.create_project(db, ADMIN, PROJECT, "First sync")
        await projects.add_member(db, ADMIN, PROJECT, "alice")
        fields = (FieldSpec("text", FieldType.STRING, required=True), FieldSpec("n", FieldType.INT))
        await projects.define_table(db, ADMIN, PROJECT, build_table_spec("notes", fields, None))
    finally:
        await db.dispose()
    conn = await asyncpg.connect(with_database(admin_url, name))
    try:
        ids = "SELECT p.id, t.id FROM projects p JOIN project_tables t ON t.project_id = p.id"
        project_id, table_id = await conn.fetchrow(ids)
        # Ids follow the ORDER BY: action (k, r) gets k * records + r + 1.
        await conn.execute(
            """
            INSERT INTO actions (project_id, table_id, user_id, action, record_id, json_data,
                                 time, action_order, device_id, superseded, stored_at)
            SELECT $1, $2, 'alice', CASE WHEN k = 0 THEN 'INSERT' ELSE 'UPDATE' END,
                   lpad(to_hex(r + 1), 32, '0'),
                   CASE WHEN k = 0 THEN '{"text": "v0", "n": ' || r || '}'
                        ELSE '{"text": "v' || k || '"}' END,
                   1000 + k::bigint * $3 + r, 0, 'loader', false, now()
            FROM generate_series(0, $4 - 1) AS k, generate_series(0, $3 - 1) AS r
            ORDER BY k, r
            """,
            project_id,
            table_id,
            records,
            changes,
        )
        await conn.execute(
            """
            INSERT INTO records (project_id, table_id, user_id, record_id, record_key, data,
                                 deleted, position, device_id, created_at, updated_at)
            SELECT $1, $2, 'alice', lpad(to_hex(r + 1), 32, '0'), lpad(to_hex(r + 1), 32, '0'),
                   jsonb_build_object('text', 'v' || ($4 - 1), 'n', r), false,
                   ($4 - 1)::bigint * $3 + r + 1, 'loader', now(), now()
            FROM generate_series(0, $3 - 1) AS r
            """,
            project_id,
            table_id,
            records,
            changes,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def first_sync(db: Database, device: str, snapshot: bool, page: int) -> Pass:
    progress: dict[str, str] = {}
    local: dict[str, dict[str, object]] = {}
    moved = reads = 0
    started = time.perf_counter()
    while True:
        batch = await read_actions(
            db,
            ALICE,
            ReadRequest(
                PROJECT,
                device_id=device,
                progress=progress,
                filter=ReadFilter(),
                max_count=page,
                snapshot=snapshot,
            ),
            max_batch=page,
        )
        reads += 1
        moved += len(batch.actions)
        for a in batch.actions:
            if a.action is ActionType.DELETE:
                local.pop(a.record_id, None)
            else:
                changed = json.loads(a.json_data or "{}")
                base = local.get(a.record_id, {}) if a.action is ActionType.UPDATE else {}
                local[a.record_id] = base | changed
        progress = {p.table: p.cursor.encode() for p in batch.progress}
        if not batch.has_more:
            return Pass(moved, reads, time.perf_counter() - started, local)


async def run(args: argparse.Namespace) -> list[tuple[str, list[Pass]]]:
    async with scratch_database(args.postgres_url) as name:
        started = time.perf_counter()
        await load(args.postgres_url, name, args.records, args.changes)
        loaded = time.perf_counter() - started
        print(f"loaded {args.records * args.changes:,} actions in {loaded:.1f} s")
        db = Database(with_database(args.postgres_url, name, "postgresql+asyncpg"))
        passes: dict[str, list[Pass]] = {"snapshot": [], "log": []}
        try:
            for round_ in range(args.rounds):
                for mode in passes:
                    device = f"{mode}-{round_}"
                    done = await first_sync(db, device, mode == "snapshot", args.page)
                    passes[mode].append(done)
                    print(
                        f"round {round_ + 1} {mode}: {done.actions:,} actions, {done.seconds:.1f} s"
                    )
        finally:
            await db.dispose()
    final = passes["snapshot"][0].records
    check(len(final) == args.records, "the snapshot did not deliver every record")
    for mode, done in passes.items():
        check(all(p.records == final for p in done), f"{mode}: a device ended with other records")
    return list(passes.items())


def table(results: list[tuple[str, list[Pass]]]) -> str:
    rows = []
    for mode, done in results:
        seconds = [p.seconds for p in done]
        rows.append(
            (
                mode,
                f"{done[0].actions:,}",
                f"{done[0].reads:,}",
                f"{statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f})",
                f"{done[0].actions / statistics.median(seconds):,.0f}",
            )
        )
    header = ("first sync", "actions moved", "reads", "seconds, median (min-max)", "actions/s")
    return markdown_table(header, rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000, help="default 100000")
    parser.add_argument("--changes", type=int, default=10, help="actions per record (10)")
    parser.add_argument("--page", type=int, default=1000, help="maxCount per read (1000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (2)")
    add_postgres_option(parser)
    args = parser.parse_args()
    if args.records < 1 or args.changes < 1:
        parser.error("--records and --changes must be at least 1")
    return args


def main() -> None:
    print(table(asyncio.run(run(parse_args()))))


if __name__ == "__main__":
    main()
