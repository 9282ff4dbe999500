"""a device is (project, user, deviceId): devices, delivered progress and device syncs per user

Until now a device was (project, deviceId) and belonged to whoever named it first, so another
user naming the same deviceId reached its history, progress and runs. Each device row used by
several users becomes one device per user, each keeping what was its own:

- history: sync events already say whose data they carried (``user_id``); a user's events of
  the device are that user's device's history. Events of other users that show the original
  owner's device name are renamed to the deviceId (that name was the owner's, not theirs);
- delivered progress already says whose read moved it (``user_id``): it stays that user's;
- runs: a device's sync belonged to its first user; runs the gateway recorded for another
  user's exchange (trigger "Device", detail "... for <user>") move to a sync of that user's
  device;
- the original owner keeps the device row with its names, type, version and pending count;
  every other user gets a device of their own, known by its deviceId, first and last seen as
  their own exchanges were.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import warnings
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from gateway.db.types import JSONDocument, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

devices = sa.table(
    "devices",
    sa.column("project_id", sa.Integer()),
    sa.column("device_id", sa.String()),
    sa.column("owner_id", sa.String()),
    sa.column("names", JSONDocument),
    sa.column("device_type", sa.String()),
    sa.column("version", sa.String()),
    sa.column("pending_up", sa.Integer()),
    sa.column("first_seen", UTCDateTime()),
    sa.column("last_seen", UTCDateTime()),
)
events = sa.table(
    "sync_events",
    sa.column("id", sa.BigInteger()),
    sa.column("project_id", sa.Integer()),
    sa.column("device_id", sa.String()),
    sa.column("device_name", sa.String()),
    sa.column("user_id", sa.String()),
    sa.column("time", UTCDateTime()),
)
delivered = sa.table(
    "delivered_progress",
    sa.column("project_id", sa.Integer()),
    sa.column("device_id", sa.String()),
    sa.column("table_id", sa.Integer()),
    sa.column("user_id", sa.String()),
    sa.column("updated_at", UTCDateTime()),
)
actions = sa.table(
    "actions",
    sa.column("project_id", sa.Integer()),
    sa.column("device_id", sa.String()),
    sa.column("user_id", sa.String()),
    sa.column("stored_at", UTCDateTime()),
)
syncs = sa.table(
    "syncs",
    sa.column("id", sa.Integer()),
    sa.column("project_id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("device_id", sa.String()),
    sa.column("direction", sa.String()),
    sa.column("owner_id", sa.String()),
    sa.column("created_by", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
runs = sa.table(
    "sync_runs",
    sa.column("id", sa.BigInteger()),
    sa.column("sync_id", sa.Integer()),
    sa.column("created_at", UTCDateTime()),
    sa.column("trigger_ui_tag", sa.String()),
    sa.column("trigger_ui_detail", sa.Text()),
)

Key = tuple[int, str, str]  # project, user, deviceId


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _primary_key(table: str, columns: list[str]) -> None:
    name = op.f(f"pk_{table}")
    with warnings.catch_warnings():
        # SQLite's copy takes the new key in place of the old one, which SQLAlchemy remarks on
        # ("specifies columns ... as primary_key=True, not matching"): that is the point.
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        with op.batch_alter_table(table, recreate="always" if _sqlite() else "auto") as batch:
            if not _sqlite():
                batch.drop_constraint(name, type_="primary")
            batch.create_primary_key(name, columns)


def upgrade() -> None:
    # New keys first: each is the old one plus the user, so every existing row fits.
    op.drop_index(op.f("ix_devices_owner_id"), table_name="devices")
    _primary_key("devices", ["project_id", "owner_id", "device_id"])
    _primary_key("delivered_progress", ["project_id", "user_id", "device_id", "table_id"])
    op.drop_index(op.f("ix_syncs_project_id_owner_id"), table_name="syncs")
    with op.batch_alter_table("syncs") as batch:
        batch.drop_constraint(op.f("uq_syncs_project_id_device_id"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_syncs_project_id_owner_id_device_id"), ["project_id", "owner_id", "device_id"]
        )
    op.drop_index(op.f("ix_sync_events_project_id_device_id_id"), table_name="sync_events")
    op.drop_index(op.f("ix_sync_events_user_id"), table_name="sync_events")
    op.create_index(
        op.f("ix_sync_events_project_id_user_id_device_id_id"),
        "sync_events",
        ["project_id", "user_id", "device_id", "id"],
    )
    _split_devices()
    _split_device_syncs()


def _split_devices() -> None:
    conn = op.get_bind()
    owners: dict[tuple[int, str], str] = {}
    names: dict[tuple[int, str], list[str]] = {}
    for row in conn.execute(
        sa.select(devices.c.project_id, devices.c.device_id, devices.c.owner_id, devices.c.names)
    ).all():
        owners[(row.project_id, row.device_id)] = row.owner_id
        names[(row.project_id, row.device_id)] = list(row.names or [])
    # Every (project, user, deviceId) some exchange used, with when it was first and last seen.
    seen: dict[Key, tuple[datetime, datetime]] = {}

    def saw(key: Key, first: datetime | None, last: datetime | None) -> None:
        now = datetime.now(UTC)
        first, last = first or now, last or first or now
        known = seen.get(key)
        seen[key] = (first, last) if known is None else (min(known[0], first), max(known[1], last))

    sources = [
        (events, events.c.time, events.c.user_id),
        (delivered, delivered.c.updated_at, delivered.c.user_id),
        (actions, actions.c.stored_at, actions.c.user_id),
        (syncs, syncs.c.created_at, syncs.c.owner_id),
    ]
    for table, time, user in sources:
        query = (
            sa.select(
                table.c.project_id, user, table.c.device_id, sa.func.min(time), sa.func.max(time)
            )
            .where(table.c.device_id.is_not(None))
            .group_by(table.c.project_id, user, table.c.device_id)
        )
        for project_id, user_id, device_id, first, last in conn.execute(query).all():
            saw((project_id, user_id, device_id), first, last)
    for (project_id, user_id, device_id), (first, last) in sorted(seen.items()):
        owner = owners.get((project_id, device_id))
        if owner == user_id:
            continue
        conn.execute(
            devices.insert().values(
                project_id=project_id,
                device_id=device_id,
                owner_id=user_id,
                names=[],
                device_type=None,
                version=None,
                pending_up=None,
                first_seen=first,
                last_seen=last,
            )
        )
        shown = [n for n in names.get((project_id, device_id), []) if n != device_id]
        if owner is not None and shown:
            conn.execute(
                events.update()
                .where(
                    events.c.project_id == project_id,
                    events.c.user_id == user_id,
                    events.c.device_id == device_id,
                    events.c.device_name.in_(shown),
                )
                .values(device_name=device_id)
            )


def _split_device_syncs() -> None:
    """Runs recorded for another user's exchange move to that user's device's sync."""
    conn = op.get_bind()
    users: dict[tuple[int, str], set[str]] = defaultdict(set)
    for project_id, owner_id, device_id in conn.execute(
        sa.select(devices.c.project_id, devices.c.owner_id, devices.c.device_id)
    ).all():
        users[(project_id, device_id)].add(owner_id)
    device_syncs = conn.execute(
        sa.select(syncs.c.id, syncs.c.project_id, syncs.c.device_id, syncs.c.owner_id).where(
            syncs.c.device_id.is_not(None)
        )
    ).all()
    for sync_id, project_id, device_id, owner_id in device_syncs:
        # Longer ids first: "x for bob" must not be taken for "bob".
        others = sorted(users[(project_id, device_id)] - {owner_id}, key=len, reverse=True)
        for user_id in others:
            suffix = f" for {user_id}"
            detail = runs.c.trigger_ui_detail
            theirs = sa.and_(
                runs.c.sync_id == sync_id,
                runs.c.trigger_ui_tag == "Device",
                sa.func.substr(detail, sa.func.length(detail) - len(suffix) + 1) == suffix,
            )
            first = conn.scalar(sa.select(sa.func.min(runs.c.created_at)).where(theirs))
            if first is None:
                continue
            new_id = conn.scalar(
                syncs.insert()
                .values(
                    project_id=project_id,
                    name=device_id[:255],
                    device_id=device_id,
                    direction="BOTH",
                    owner_id=user_id,
                    created_by=user_id,
                    created_at=first,
                )
                .returning(syncs.c.id)
            )
            conn.execute(runs.update().where(theirs).values(sync_id=new_id))


def downgrade() -> None:
    conn = op.get_bind()
    # One device, one progress per table and one sync per (project, deviceId) again: the
    # earliest device and sync keep the others' runs; the latest progress stays.
    kept: dict[tuple[int, str], Any] = {}
    for row in conn.execute(
        sa.select(devices.c.project_id, devices.c.device_id, devices.c.owner_id).order_by(
            devices.c.first_seen
        )
    ).all():
        key = (row.project_id, row.device_id)
        if key in kept:
            conn.execute(
                devices.delete().where(
                    devices.c.project_id == row.project_id,
                    devices.c.device_id == row.device_id,
                    devices.c.owner_id == row.owner_id,
                )
            )
        else:
            kept[key] = row.owner_id
    latest: set[tuple[int, str, int]] = set()
    for row in conn.execute(
        sa.select(
            delivered.c.project_id, delivered.c.device_id, delivered.c.table_id, delivered.c.user_id
        ).order_by(delivered.c.updated_at.desc())
    ).all():
        key = (row.project_id, row.device_id, row.table_id)
        if key in latest:
            conn.execute(
                delivered.delete().where(
                    delivered.c.project_id == row.project_id,
                    delivered.c.device_id == row.device_id,
                    delivered.c.table_id == row.table_id,
                    delivered.c.user_id == row.user_id,
                )
            )
        latest.add(key)
    first_sync: dict[tuple[int, str], int] = {}
    for sync_id, project_id, device_id in conn.execute(
        sa.select(syncs.c.id, syncs.c.project_id, syncs.c.device_id)
        .where(syncs.c.device_id.is_not(None))
        .order_by(syncs.c.id)
    ).all():
        key = (project_id, device_id)
        if key in first_sync:
            conn.execute(
                runs.update().where(runs.c.sync_id == sync_id).values(sync_id=first_sync[key])
            )
            conn.execute(syncs.delete().where(syncs.c.id == sync_id))
        else:
            first_sync[key] = sync_id
    op.drop_index(op.f("ix_sync_events_project_id_user_id_device_id_id"), table_name="sync_events")
    op.create_index(op.f("ix_sync_events_user_id"), "sync_events", ["user_id"])
    op.create_index(
        op.f("ix_sync_events_project_id_device_id_id"),
        "sync_events",
        ["project_id", "device_id", "id"],
    )
    with op.batch_alter_table("syncs") as batch:
        batch.drop_constraint(op.f("uq_syncs_project_id_owner_id_device_id"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_syncs_project_id_device_id"), ["project_id", "device_id"]
        )
    op.create_index(op.f("ix_syncs_project_id_owner_id"), "syncs", ["project_id", "owner_id"])
    _primary_key("delivered_progress", ["project_id", "device_id", "table_id"])
    _primary_key("devices", ["project_id", "device_id"])
    op.create_index(op.f("ix_devices_owner_id"), "devices", ["owner_id"])
