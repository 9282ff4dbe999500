"""What a device's exchange with the gateway leaves behind: the device registered and seen,
its history (CSPro's puts and gets), what it has received (delivered progress) and its runs.

The writer, the reader and the live stream do that bookkeeping here and nowhere else, as do the
heartbeat (``reportDevice``) and reported syncs (``recordSyncEvent``). Every entry point takes an
``Exchange``: the project, the user whose data moved (allowed to the caller by
``open_user_data`` before), the device, and who called. A device is (project, user, deviceId):
it is only ever looked up or created among that user's devices, so another user naming the
same deviceId reaches another device, and ownership holds by construction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Device, SyncEvent, SyncRun
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, GatewayError
from gateway.sync.cursor import Position
from gateway.sync.pending import mark_delivered
from gateway.sync.runs import (
    COUNTER_NAMES,
    MAX_NAME,
    Counters,
    ExchangeDirection,
    RunInfo,
    SyncRunStatus,
    device_sync,
    device_trigger,
    record_run,
    start_run,
)
from gateway.sync.runs.model import to_run
from gateway.sync.text import check_length

MAX_TEXT = 255


class Direction(StrEnum):
    PUT = "PUT"
    GET = "GET"


@dataclass(frozen=True, slots=True)
class Exchange:
    project_id: int
    user: str  # whose data: the device's owner
    device_id: str
    username: str  # who called: the owner, a professional with a grant, an admin
    include_tables: Sequence[str] | None = None
    exclude_tables: Sequence[str] | None = None

    @property
    def universe(self) -> str:
        """The exchange's filter as text; empty when it covered everything."""
        return universe(self.include_tables, self.exclude_tables)


def universe(include: Sequence[str] | None, exclude: Sequence[str] | None) -> str:
    parts = []
    if include:
        parts.append("includeTables=" + ",".join(include))
    if exclude:
        parts.append("excludeTables=" + ",".join(exclude))
    return "; ".join(parts)


def check_text(field: str, value: str, most: int = MAX_TEXT) -> str:
    """A device's id, name, type or version: 1 to ``most`` characters (its column's), not
    blank, no control characters (which PostgreSQL refuses in text, and no person can read)."""
    check_length(field, value, most)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise BadUserInput(f"{field} must not contain control characters", field=field)
    return value


class Named(Protocol):
    device_id: str
    names: list[str]


def display_name(device: Named) -> str:
    """A device that never reported a name is known by its deviceId."""
    return device.names[-1] if device.names else device.device_id


async def find_device(
    session: AsyncSession, project_id: int, user: str, device_id: str
) -> Device | None:
    return await session.get(Device, (project_id, user, device_id))


async def touch_device(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str,
    *,
    name: str | None = None,
    device_type: str | None = None,
    version: str | None = None,
    pending_up: int | None = None,
) -> Device:
    """``user``'s device ``device_id``, registered on first sight, noted as seen now, with what
    it reports."""
    check_text("deviceId", device_id)
    labels = (("name", name, MAX_TEXT), ("type", device_type, 100), ("version", version, 100))
    for field, value, most in labels:
        if value is not None:
            check_text(field, value, most)
    if pending_up is not None and pending_up < 0:
        raise BadUserInput("pendingUp cannot be negative", field="pendingUp")
    now = utcnow()
    device = await session.get(Device, (project_id, user, device_id), with_for_update=True)
    if device is None:
        device = Device(
            project_id=project_id,
            owner_id=user,
            device_id=device_id,
            names=[],
            first_seen=now,
            last_seen=now,
        )
        session.add(device)
    device.last_seen = now
    if name is not None and name not in device.names:
        device.names = [*device.names, name]
    if device_type is not None:
        device.device_type = device_type
    if version is not None:
        device.version = version
    if pending_up is not None:
        device.pending_up = pending_up
    return device


def record_event(
    session: AsyncSession,
    device: Device,
    *,
    username: str,
    direction: Direction,
    universe: str = "",
    partial: bool = False,
    device_name: str | None = None,
    time: datetime | None = None,
) -> SyncEvent:
    """One put or get of ``device`` in its owner's history (now, unless ``time`` says when
    another service's sync happened)."""
    event = SyncEvent(
        project_id=device.project_id,
        device_id=device.device_id,
        device_name=device_name or display_name(device),
        username=username,
        user_id=device.owner_id,
        direction=direction.value,
        universe=universe,
        partial=partial,
    )
    if time is not None:
        event.time = time
    session.add(event)
    return event


async def wrote(
    session: AsyncSession, exchange: Exchange, counters: Counters, *, what: str
) -> RunInfo:
    """A batch the device wrote, in the batch's own transaction: a PUT, and a COMPLETED run."""
    device = await _seen(session, exchange)
    record_event(
        session,
        device,
        username=exchange.username,
        direction=Direction.PUT,
        universe=exchange.universe,
    )
    return await _run(session, exchange, SyncRunStatus.COMPLETED, counters, what)


async def refused(
    session: AsyncSession,
    exchange: Exchange,
    counters: Counters,
    error: GatewayError,
    detail: str | None,
    *,
    what: str,
) -> RunInfo:
    """A batch refused (its own transaction rolled back): a FAILED run with the client's error."""
    await _seen(session, exchange)
    return await _run(
        session,
        exchange,
        SyncRunStatus.FAILED,
        counters,
        what,
        error_code=error.code,
        error_message=error.message,
        error_detail=detail,
    )


async def received(
    session: AsyncSession,
    exchange: Exchange,
    positions: Mapping[int, Position],
    *,
    delivered: bool,
    partial: bool,
    counters: Counters | None,
    full_sync: bool,
    what: str = "read",
) -> RunInfo | None:
    """A read by the device: it has received up to ``positions`` (per table id), a GET when it
    ``delivered`` actions, and given ``counters`` a COMPLETED run (full when the read started
    without any progress). A live stream's reads count into its own run instead.
    On PostgreSQL in one statement, atomic on its own: ``session`` may be an autocommit one
    (``Database.lookup()``), without BEGIN and COMMIT."""
    if session.get_bind().dialect.name == "postgresql":
        args = (positions, delivered, partial, counters, full_sync, what)
        return await _received_at_once(session, exchange, *args)
    device = await _seen(session, exchange)
    await mark_delivered(session, exchange.project_id, exchange.user, exchange.device_id, positions)
    if delivered:
        record_event(
            session,
            device,
            username=exchange.username,
            direction=Direction.GET,
            partial=partial,
            universe=exchange.universe,
        )
    if counters is None:
        return None
    return await _run(session, exchange, SyncRunStatus.COMPLETED, counters, what, full=full_sync)


# A read's bookkeeping on PostgreSQL in one statement (one round trip; on an autocommit
# connection no BEGIN and COMMIT either), instead of eight: the device registered or seen, its
# delivered progress moved forward per table, a GET when it delivered actions, and, when the read
# is a run of its own, the run (the device's sync created on first use). Every part does what
# ``touch_device``, ``mark_delivered``, ``record_event``, ``device_sync`` and ``record_run`` do;
# the tests run both paths, SQLite keeping those.
_SEEN_AND_RECEIVED = """
WITH device AS (
    INSERT INTO devices AS d (project_id, owner_id, device_id, names, first_seen, last_seen)
    VALUES (:project_id, :user, :device_id, '[]', :now, :now)
    ON CONFLICT (project_id, owner_id, device_id) DO UPDATE SET last_seen = excluded.last_seen
    RETURNING d.names
), delivered AS (
    INSERT INTO delivered_progress AS p
        (project_id, user_id, device_id, table_id, xid, position, updated_at)
    SELECT :project_id, :user, :device_id, u.table_id, u.xid, u.position, :now
    FROM unnest(:table_ids, :xids, :positions) AS u(table_id, xid, position)
    ORDER BY u.table_id
    ON CONFLICT (project_id, user_id, device_id, table_id) DO UPDATE
        SET xid = excluded.xid, position = excluded.position, updated_at = excluded.updated_at
        WHERE (excluded.xid, excluded.position) > (p.xid, p.position)
), event AS (
    INSERT INTO sync_events
        (project_id, device_id, device_name, username, user_id, direction, universe, partial,
         time)
    SELECT :project_id, :device_id, coalesce(device.names ->> -1, :device_id), :username, :user,
           'GET', :universe, :partial, :now
    FROM device WHERE :get
)"""
_AND_RUN = """, created_sync AS (
    INSERT INTO syncs (project_id, name, device_id, direction, owner_id, created_by, created_at)
    SELECT :project_id, :sync_name, :device_id, :direction, :user, :user, :now
    WHERE NOT EXISTS (
        SELECT FROM syncs
        WHERE project_id = :project_id AND owner_id = :user AND device_id = :device_id
    )
    ON CONFLICT (project_id, owner_id, device_id) DO NOTHING
    RETURNING id
), sync AS (
    SELECT id FROM syncs
    WHERE project_id = :project_id AND owner_id = :user AND device_id = :device_id
    UNION ALL SELECT id FROM created_sync
)
INSERT INTO sync_runs
    (sync_id, project_id, status, created_at, updated_at, completed_at, full_sync,
     trigger_ui_tag, trigger_ui_detail, canceled, {counters})
SELECT (SELECT id FROM sync LIMIT 1), :project_id, :status, :now, :now, :now, :full_sync,
       :trigger_tag, :trigger_detail, false, {values}
RETURNING id, sync_id"""
_NO_RUN = " SELECT 1"
_RECEIVED_TYPES = (
    bindparam("table_ids", type_=ARRAY(Integer)),
    bindparam("xids", type_=ARRAY(BigInteger)),
    bindparam("positions", type_=ARRAY(BigInteger)),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("get", type_=Boolean),
    bindparam("partial", type_=Boolean),
)
_RECEIVED_ONLY = text(_SEEN_AND_RECEIVED + _NO_RUN).bindparams(*_RECEIVED_TYPES)
_RECEIVED_WITH_RUN = text(
    _SEEN_AND_RECEIVED
    + _AND_RUN.format(
        counters=", ".join(COUNTER_NAMES), values=", ".join(f":{n}" for n in COUNTER_NAMES)
    )
).bindparams(*_RECEIVED_TYPES, bindparam("full_sync", type_=Boolean))


async def _received_at_once(
    session: AsyncSession, exchange: Exchange, positions: Mapping[int, Position], get: bool,
    partial: bool, counters: Counters | None, full_sync: bool, what: str,
) -> RunInfo | None:  # fmt: skip
    now = utcnow()
    tables = sorted(positions.items())
    params: dict[str, Any] = {
        "project_id": exchange.project_id,
        "user": exchange.user,
        "device_id": exchange.device_id,
        "username": exchange.username,
        "universe": exchange.universe,
        "now": now,
        "get": get,
        "partial": partial,
        "table_ids": [t for t, _ in tables],
        "xids": [p.xid for _, p in tables],
        "positions": [p.id for _, p in tables],
    }
    if counters is None:
        await session.execute(_RECEIVED_ONLY, params)
        return None
    trigger = device_trigger(what, exchange.device_id, exchange.username, exchange.user)
    row = {
        "project_id": exchange.project_id,
        "status": SyncRunStatus.COMPLETED.value,
        "created_at": now,
        "updated_at": now,
        "completed_at": now,
        "full_sync": full_sync,
        "trigger_ui_tag": trigger.ui_tag,
        "trigger_ui_detail": trigger.ui_detail,
        "canceled": False,
        **{name: 0 for name in COUNTER_NAMES} | counters.given(),
    }
    params |= {name: row[name] for name in COUNTER_NAMES} | {
        "sync_name": exchange.device_id[:MAX_NAME],
        "direction": ExchangeDirection.BOTH.value,
        "status": row["status"],
        "full_sync": full_sync,
        "trigger_tag": trigger.ui_tag,
        "trigger_detail": trigger.ui_detail,
    }
    run_id, sync_id = (await session.execute(_RECEIVED_WITH_RUN, params)).one()
    return to_run(SyncRun(id=run_id, sync_id=sync_id, **row), exchange.user)


async def live_started(session: AsyncSession, exchange: Exchange, *, full_sync: bool) -> RunInfo:
    """A live subscription of the device: one WORKING run for all it streams. Concurrent: the
    device's writes and reads meanwhile are runs of the same sync."""
    await _seen(session, exchange)
    sync = await device_sync(session, exchange.project_id, exchange.device_id, exchange.user)
    trigger = device_trigger(
        "live subscription", exchange.device_id, exchange.username, exchange.user
    )
    return await start_run(session, sync, trigger=trigger, full_sync=full_sync, concurrent=True)


async def _seen(session: AsyncSession, exchange: Exchange) -> Device:
    return await touch_device(session, exchange.project_id, exchange.user, exchange.device_id)


async def _run(
    session: AsyncSession,
    exchange: Exchange,
    status: SyncRunStatus,
    counters: Counters,
    what: str,
    *,
    full: bool = False,
    error_code: str | None = None,
    error_message: str | None = None,
    error_detail: str | None = None,
) -> RunInfo:
    """One exchange as a finished run of the device's own sync (created on first use)."""
    sync = await device_sync(session, exchange.project_id, exchange.device_id, exchange.user)
    return await record_run(
        session,
        sync,
        status,
        counters,
        trigger=device_trigger(what, exchange.device_id, exchange.username, exchange.user),
        full_sync=full,
        error_code=error_code,
        error_message=error_message,
        error_detail=error_detail,
    )
