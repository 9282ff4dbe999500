"""The gauges that need the database, read when ``/metrics`` is scraped (``Metrics.refresh``
keeps them for ``GATEWAY_METRICS_CACHE_SECONDS``): the fleet of devices, sync runs by status,
and what holds the log's readers back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from gateway.db import Database
from gateway.db.models import Project, SyncRun
from gateway.sync.devices import DeviceStatus, HealthRules, device_health
from gateway.sync.horizon import horizon, oldest_transaction
from gateway.sync.runs.model import SyncRunStatus

# One past the latest completed transaction, in the horizon's snapshot: the horizon is there
# unless a transaction still running holds it back, and falls behind as others complete.
_PG_COMPLETED = text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")


@dataclass(slots=True)
class FleetState:
    devices: Counter[str] = field(default_factory=Counter)  # by DeviceStatus
    pending_up: int = 0  # changes devices reported they still have to send
    pending_down: int = 0  # records devices have yet to receive
    runs: Counter[str] = field(default_factory=Counter)  # sync runs by status
    horizon_lag_xids: int = 0
    oldest_transaction_seconds: float = 0.0


async def read_fleet(db: Database, rules: HealthRules) -> FleetState:
    """Every project's devices with their health (the rules ``devices`` answers with), the
    runs kept, and the horizon: a few queries per project, so scrapes read it through a cache."""
    state = FleetState(
        devices=Counter(dict.fromkeys(DeviceStatus, 0)),
        runs=Counter(dict.fromkeys(SyncRunStatus, 0)),
    )
    async with db.session() as session:
        projects = (await session.execute(select(Project.id, Project.code))).all()
        for project_id, code in projects:
            for device in await device_health(session, code, project_id, owners=None, rules=rules):
                state.devices[device.status] += 1
                state.pending_up += device.pending_up or 0
                state.pending_down += device.pending_down
        runs = await session.execute(select(SyncRun.status, func.count()).group_by(SyncRun.status))
        state.runs.update({status: count for status, count in runs})
    if db.backend == "postgresql":
        async with db.snapshot() as session:
            upper = await horizon(session)
            completed = int((await session.execute(_PG_COMPLETED)).scalar_one())
            state.horizon_lag_xids = max(0, completed - upper.xid)
            oldest = await oldest_transaction(session)
        if oldest is not None and oldest.age_seconds is not None:
            state.oldest_transaction_seconds = oldest.age_seconds
    return state
