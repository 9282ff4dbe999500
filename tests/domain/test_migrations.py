from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from gateway.db import Database
from gateway.db.migrate import current_revision, downgrade, head_revision, upgrade
from gateway.db.models import (
    DeliveredProgress,
    Device,
    ProjectMember,
    Sync,
    SyncEvent,
    SyncRun,
    metadata,
)
from gateway.db.types import JSONDocument, UTCDateTime

GATEWAY_TABLES = {
    "projects",
    "project_tables",
    "users",
    "access_grants",
    "actions",
    "records",
    "write_progress",
}


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_builds_exactly_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        assert await current_revision(db) == head_revision()
        assert await table_names(db) >= GATEWAY_TABLES
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        await db.dispose()


async def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade(db)
        await upgrade(db)
        await downgrade(db, "base")
        assert await current_revision(db) is None
        assert not GATEWAY_TABLES & await table_names(db)
        await upgrade(db)
        assert await current_revision(db) == head_revision()
    finally:
        await db.dispose()


# The tables as they were at 0008, for writing a database of that time.
_meta = sa.MetaData()
_projects = sa.Table(
    "projects", _meta, sa.Column("id", sa.Integer), sa.Column("code", sa.String),
    sa.Column("name", sa.String), sa.Column("created_at", UTCDateTime()),
)  # fmt: skip
_tables = sa.Table(
    "project_tables", _meta, sa.Column("id", sa.Integer), sa.Column("project_id", sa.Integer),
    sa.Column("name", sa.String), sa.Column("key_field", sa.String),
    sa.Column("fields", JSONDocument), sa.Column("conflict_policy", sa.String),
    sa.Column("created_at", UTCDateTime()),
)  # fmt: skip
_devices = sa.Table(
    "devices", _meta, sa.Column("project_id", sa.Integer), sa.Column("device_id", sa.String),
    sa.Column("owner_id", sa.String), sa.Column("names", JSONDocument),
    sa.Column("device_type", sa.String), sa.Column("version", sa.String),
    sa.Column("pending_up", sa.Integer), sa.Column("first_seen", UTCDateTime()),
    sa.Column("last_seen", UTCDateTime()),
)  # fmt: skip
_events = sa.Table(
    "sync_events", _meta, sa.Column("id", sa.Integer), sa.Column("project_id", sa.Integer),
    sa.Column("device_id", sa.String), sa.Column("device_name", sa.String),
    sa.Column("username", sa.String), sa.Column("user_id", sa.String),
    sa.Column("direction", sa.String), sa.Column("universe", sa.Text),
    sa.Column("partial", sa.Boolean), sa.Column("time", UTCDateTime()),
)  # fmt: skip
_delivered = sa.Table(
    "delivered_progress", _meta, sa.Column("project_id", sa.Integer),
    sa.Column("device_id", sa.String), sa.Column("table_id", sa.Integer),
    sa.Column("user_id", sa.String), sa.Column("xid", sa.BigInteger),
    sa.Column("position", sa.BigInteger), sa.Column("updated_at", UTCDateTime()),
)  # fmt: skip
_syncs = sa.Table(
    "syncs", _meta, sa.Column("id", sa.Integer), sa.Column("project_id", sa.Integer),
    sa.Column("name", sa.String), sa.Column("device_id", sa.String),
    sa.Column("direction", sa.String), sa.Column("owner_id", sa.String),
    sa.Column("created_by", sa.String), sa.Column("created_at", UTCDateTime()),
)  # fmt: skip
_COUNTERS = (
    "source_record_count", "records_failed", "source_record_updates", "source_record_deletes",
    "source_record_invalids", "records_invalid", "records_processed", "records_updated",
)  # fmt: skip
_runs = sa.Table(
    "sync_runs", _meta, sa.Column("id", sa.Integer), sa.Column("sync_id", sa.Integer),
    sa.Column("project_id", sa.Integer), sa.Column("status", sa.String),
    sa.Column("created_at", UTCDateTime()), sa.Column("updated_at", UTCDateTime()),
    sa.Column("completed_at", UTCDateTime()), sa.Column("full_sync", sa.Boolean),
    sa.Column("trigger_ui_tag", sa.String), sa.Column("trigger_ui_detail", sa.Text),
    sa.Column("canceled", sa.Boolean), *(sa.Column(c, sa.BigInteger) for c in _COUNTERS),
)  # fmt: skip


async def test_a_device_two_users_shared_becomes_one_device_each(database_url: str) -> None:
    """At 0008 a device was (project, deviceId): alice's tablet, whose id bob also used, held
    both users' history, one table's delivered progress each, and both users' runs in alice's
    sync. At head each has a device of their own with their own history, runs and progress,
    and both are members of the project they used."""
    db = Database(database_url)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        await upgrade(db, "0008")
        async with db.engine.begin() as conn:
            await conn.execute(
                _projects.insert(), [{"id": 1, "code": "p", "name": "P", "created_at": t0}]
            )
            await conn.execute(
                _tables.insert(),
                [
                    {
                        "id": t,
                        "project_id": 1,
                        "name": name,
                        "key_field": None,
                        "fields": [],
                        "conflict_policy": "LAST_WRITER_WINS",
                        "created_at": t0,
                    }
                    for t, name in ((1, "notes"), (2, "steps"))
                ],
            )
            await conn.execute(
                _devices.insert(),
                [
                    {
                        "project_id": 1,
                        "device_id": "tab",
                        "owner_id": "alice",
                        "names": ["Alice's tablet"],
                        "device_type": "tablet",
                        "version": "2",
                        "pending_up": 3,
                        "first_seen": t0,
                        "last_seen": t0 + timedelta(hours=5),
                    }
                ],
            )
            await conn.execute(
                _events.insert(),
                [
                    {
                        "id": i,
                        "project_id": 1,
                        "device_id": "tab",
                        "device_name": "Alice's tablet",
                        "username": user,
                        "user_id": user,
                        "direction": "PUT",
                        "universe": "",
                        "partial": False,
                        "time": t0 + timedelta(hours=i),
                    }
                    for i, user in ((1, "alice"), (2, "bob"), (3, "alice"), (4, "bob"))
                ],
            )
            await conn.execute(
                _delivered.insert(),
                [
                    {
                        "project_id": 1,
                        "device_id": "tab",
                        "table_id": table,
                        "user_id": user,
                        "xid": 0,
                        "position": position,
                        "updated_at": t0 + timedelta(hours=hour),
                    }
                    for table, user, position, hour in ((1, "alice", 11, 1), (2, "bob", 22, 4))
                ],
            )
            sync_id = await conn.scalar(
                _syncs.insert().returning(_syncs.c.id),
                {
                    "project_id": 1,
                    "name": "tab",
                    "device_id": "tab",
                    "direction": "BOTH",
                    "owner_id": "alice",
                    "created_by": "alice",
                    "created_at": t0,
                },
            )
            await conn.execute(
                _runs.insert(),
                [
                    {
                        "id": i,
                        "sync_id": sync_id,
                        "project_id": 1,
                        "status": "COMPLETED",
                        "created_at": t0 + timedelta(hours=i),
                        "updated_at": t0,
                        "completed_at": t0,
                        "full_sync": False,
                        "trigger_ui_tag": "Device",
                        "trigger_ui_detail": f"read from device tab by {user} for {user}",
                        "canceled": False,
                        **dict.fromkeys(_COUNTERS, i),
                    }
                    for i, user in ((1, "alice"), (2, "bob"), (3, "bob"))
                ],
            )

        await upgrade(db)

        async with db.session() as session:
            devices = {d.owner_id: d for d in await session.scalars(select(Device))}
            events = (
                await session.execute(
                    select(SyncEvent.user_id, SyncEvent.id, SyncEvent.device_name)
                )
            ).all()
            delivered = (
                await session.execute(
                    select(
                        DeliveredProgress.user_id,
                        DeliveredProgress.table_id,
                        DeliveredProgress.position,
                    )
                )
            ).all()
            syncs = {s.owner_id: s for s in await session.scalars(select(Sync))}
            runs = (await session.execute(select(SyncRun.sync_id, SyncRun.id))).all()
            members = set(
                (
                    await session.execute(select(ProjectMember.project_id, ProjectMember.user_id))
                ).all()
            )
        assert set(devices) == {"alice", "bob"}
        alice, bob = devices["alice"], devices["bob"]
        assert (alice.device_id, alice.names, alice.device_type, alice.pending_up) == (
            "tab",
            ["Alice's tablet"],
            "tablet",
            3,
        )
        # bob's tablet is his own: none of alice's names, seen as his exchanges were
        assert (bob.device_id, bob.names, bob.device_type, bob.pending_up) == (
            "tab",
            [],
            None,
            None,
        )
        assert (bob.first_seen, bob.last_seen) == (t0 + timedelta(hours=2), t0 + timedelta(hours=4))
        assert sorted(events) == [
            ("alice", 1, "Alice's tablet"),
            ("alice", 3, "Alice's tablet"),
            ("bob", 2, "tab"),
            ("bob", 4, "tab"),
        ]
        assert sorted(delivered) == [("alice", 1, 11), ("bob", 2, 22)]
        assert (syncs["bob"].device_id, syncs["bob"].owner_id) == ("tab", "bob")
        assert sorted(runs) == sorted(
            [(syncs["alice"].id, 1), (syncs["bob"].id, 2), (syncs["bob"].id, 3)]
        )
        assert members == {(1, "alice"), (1, "bob")}
    finally:
        await db.dispose()
