"""RegardingWork's sync status report (``syncStatus``), over the gateway's own log.

A report is built in two steps. ``load_states`` reads what it needs for many users at once with
a few grouped queries (devices with their health, actions per table, open conflicts); the
status feed runs it once per change for every user a dashboard watches. ``build_report`` then
derives a report from one user's state and the caller's options, without the database.

Overall status, first rule that holds:

- ``CONFLICTS``: the user has OPEN conflicts (whether or not ``checkConflicts`` lists them);
- ``OFFLINE``: no device of the user was seen within ``lastHours`` (or the user has none);
- ``DELAYED``: a device is ``PENDING`` or ``STALE`` (changes wait in either direction); a device
  that is ``OFFLINE`` does not hold the status back, it gets a recommendation instead;
- ``HEALTHY`` otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.dialect import in_values
from gateway.db.models import Action, Conflict
from gateway.db.types import utcnow
from gateway.errors import BadUserInput
from gateway.sync.actions import ActionType
from gateway.sync.conflicts import ConflictKind, ConflictStatus, Version
from gateway.sync.devices import DeviceInfo, DeviceStatus, HealthRules, device_health
from gateway.sync.exchange import display_name
from gateway.sync.projects import load_catalog, only_project, open_user_data

MAX_LISTED_CONFLICTS = 100  # the newest open ones; ``conflicts`` pages through all of them
OPEN, DELETE = ConflictStatus.OPEN.value, ActionType.DELETE.value
OVERLAP = ConflictKind.SESSION_OVERLAP.value
# What an open conflict asks of a person. Conflicts are recorded under LAST_WRITER_WINS (REJECT
# refuses the batch instead), so the later change is already applied: KEPT_LATEST when the
# record lives on with it (confirming is enough), MANUAL_REVIEW_REQUIRED when a deletion won and
# took the other device's edit with it.
KEPT_LATEST = "KEPT_LATEST"
MANUAL_REVIEW_REQUIRED = "MANUAL_REVIEW_REQUIRED"


class OverallSyncStatus(StrEnum):
    HEALTHY = "HEALTHY"
    DELAYED = "DELAYED"
    CONFLICTS = "CONFLICTS"
    OFFLINE = "OFFLINE"


@dataclass(frozen=True, slots=True)
class ReportOptions:
    include_devices: bool = True
    check_conflicts: bool = False
    last_hours: int = 24

    def __post_init__(self) -> None:
        if self.last_hours <= 0:
            raise BadUserInput("lastHours must be positive", field="lastHours")


@dataclass(frozen=True, slots=True)
class TableActivity:
    table: str
    actions: int
    last_change: datetime


@dataclass(frozen=True, slots=True)
class StatusConflict:
    """A conflict in RegardingWork's shape."""

    id: int
    type: ConflictKind
    description: str
    affected_records: list[str]
    resolution: str
    devices: list[str]
    table: str
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class UserState:
    """What one user's report is built from."""

    user: str
    devices: tuple[DeviceInfo, ...]
    tables: tuple[TableActivity, ...]
    open_conflicts: int
    manual: int  # of the open conflicts, those that need MANUAL_REVIEW_REQUIRED
    overlaps: int  # of the open conflicts, the SESSION_OVERLAP ones
    conflicts: tuple[StatusConflict, ...] | None  # None: not loaded (no one asked to list them)


@dataclass(frozen=True, slots=True)
class SyncLag:
    seconds: int
    text: str


@dataclass(frozen=True, slots=True)
class DataSummary:
    total_actions: int
    unsynced_actions: int
    last_action: datetime | None
    tables: list[TableActivity]
    conflicts_detected: int


@dataclass(frozen=True, slots=True)
class ConflictResolution:
    auto_resolvable: bool
    recommended_action: str
    support_contact: str | None


@dataclass(frozen=True, slots=True)
class SyncStatusReport:
    project: str
    user: str
    sync_status: OverallSyncStatus
    last_sync: datetime | None
    sync_lag: SyncLag | None
    total_devices: int
    active_devices: int
    pending_syncs: int
    devices: list[DeviceInfo] | None
    data_summary: DataSummary
    recommendations: list[str]
    conflicts: list[StatusConflict] | None
    conflict_resolution: ConflictResolution | None


async def sync_status(
    db: Database,
    principal: Principal,
    project: str | None,
    user: str | None,
    options: ReportOptions,
    *,
    rules: HealthRules,
    support_contact: str | None,
) -> SyncStatusReport:
    """One user's report (omitted: the caller's), under the access rule; without a project,
    of the one project the caller is a member of."""
    async with db.session() as session:
        if project is None:
            project = await only_project(session, principal)
        data = await open_user_data(session, principal, project, user)
        devices = await device_health(
            session, project, data.project_id, owners=[data.user], rules=rules
        )
        names = {t.id: name for name, t in data.tables.items()}
        states = await load_states(
            session,
            data.project_id,
            names,
            devices,
            [data.user],
            listed=[data.user] if options.check_conflicts else (),
        )
    return build_report(project, states[data.user], options, utcnow(), support_contact)


async def report_owner(
    db: Database, principal: Principal, project: str, user: str | None
) -> tuple[int, str]:
    """The project's id, and whose report ``principal`` asks for (omitted: their own), once
    the access rule allows it."""
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        return data.project_id, data.user


async def project_states(
    db: Database,
    project: str,
    devices: Iterable[DeviceInfo],
    users: Collection[str],
    listed: Collection[str],
) -> dict[str, UserState]:
    """The states of ``users`` of a project whose devices' health is already known (the status
    feed computes it for its device dashboards); conflicts listed for ``listed``."""
    async with db.session() as session:
        found, tables = await load_catalog(session, project)
        assert found.id is not None
        names = {t.id: name for name, t in tables.items()}
        return await load_states(session, found.id, names, devices, users, listed=listed)


async def load_states(
    session: AsyncSession,
    project_id: int,
    table_names: Mapping[int, str],
    devices: Iterable[DeviceInfo],
    users: Collection[str],
    *,
    listed: Collection[str] = (),
) -> dict[str, UserState]:
    """The states of ``users`` in a few grouped queries, however many users and devices."""
    if not users:
        return {}
    wanted = sorted(users)
    by_owner: dict[str, list[DeviceInfo]] = defaultdict(list)
    for device in devices:
        by_owner[device.owner].append(device)
    # Superseded actions (last-writer-wins losers) were never applied: they count as conflicts.
    activity = await session.execute(
        select(Action.user_id, Action.table_id, func.count(), func.max(Action.stored_at))
        .where(
            Action.project_id == project_id,
            in_values(session, Action.user_id, wanted),
            Action.superseded.is_(False),  # type: ignore[attr-defined]
        )
        .group_by(Action.user_id, Action.table_id)
    )
    tables: dict[str, list[TableActivity]] = defaultdict(list)
    for user, table_id, count, last in activity.all():
        tables[user].append(TableActivity(table_names.get(table_id, str(table_id)), count, last))
    open_counts: dict[str, int] = defaultdict(int)
    manual: dict[str, int] = defaultdict(int)
    overlaps: dict[str, int] = defaultdict(int)
    winner_action = Conflict.winner["action"].as_string()  # type: ignore[index]
    for user, kind, action, count in await session.execute(
        select(Conflict.user_id, Conflict.kind, winner_action, func.count())
        .where(
            Conflict.project_id == project_id,
            Conflict.status == OPEN,
            in_values(session, Conflict.user_id, wanted),
        )
        .group_by(Conflict.user_id, Conflict.kind, winner_action)
    ):
        open_counts[user] += count
        if kind == OVERLAP:
            overlaps[user] += count
            manual[user] += count
        elif action == DELETE:
            manual[user] += count
    conflicts = await _open_conflicts(session, project_id, table_names, listed, by_owner)
    return {
        user: UserState(
            user=user,
            devices=tuple(by_owner.get(user, ())),
            tables=tuple(sorted(tables.get(user, ()), key=lambda t: t.table)),
            open_conflicts=open_counts[user],
            manual=manual[user],
            overlaps=overlaps[user],
            conflicts=tuple(conflicts.get(user, ())) if user in listed else None,
        )
        for user in wanted
    }


async def _open_conflicts(
    session: AsyncSession,
    project_id: int,
    table_names: Mapping[int, str],
    users: Collection[str],
    devices: Mapping[str, list[DeviceInfo]],
) -> dict[str, list[StatusConflict]]:
    """The newest open conflicts of each of ``users``, at most MAX_LISTED_CONFLICTS each."""
    if not users:
        return {}
    rank = func.row_number().over(partition_by=Conflict.user_id, order_by=Conflict.id.desc())  # type: ignore[union-attr]
    ranked = (
        select(Conflict.id, rank.label("rank"))
        .where(
            Conflict.project_id == project_id,
            Conflict.status == OPEN,
            in_values(session, Conflict.user_id, sorted(users)),
        )
        .subquery()
    )
    rows = await session.scalars(
        select(Conflict)
        .join(ranked, ranked.c.id == Conflict.id)
        .where(ranked.c.rank <= MAX_LISTED_CONFLICTS)
        .order_by(Conflict.id.desc())  # type: ignore[union-attr]
    )
    found: dict[str, list[StatusConflict]] = defaultdict(list)
    for row in rows:
        names = {d.device_id: display_name(d) for d in devices.get(row.user_id, ())}
        found[row.user_id].append(_conflict(row, table_names.get(row.table_id, ""), names))
    return found


def _conflict(row: Conflict, table: str, names: Mapping[str, str]) -> StatusConflict:
    assert row.id is not None
    won, lost = Version.from_json(row.winner), Version.from_json(row.loser)
    winner, loser = won.device_id, lost.device_id

    def who(device: str | None) -> str:
        return names.get(device, device) if device else "a writer without a device"

    record = f"{table} record {row.record_key!r}"
    if row.kind == OVERLAP:
        # Both records are kept: which one is a duplicate is for a person to say.
        return StatusConflict(
            id=row.id,
            type=ConflictKind.SESSION_OVERLAP,
            description="Overlapping sessions detected from different devices: "
            f"{who(loser)} recorded {record}, which overlaps {table} record "
            f"{won.record_id!r} from {who(winner)}",
            affected_records=[r for r in (won.record_id, row.record_id) if r],
            resolution=MANUAL_REVIEW_REQUIRED,
            devices=[d for d in dict.fromkeys((winner, loser)) if d],
            table=table,
            detected_at=row.detected_at,
        )
    by_action = {lost.action: loser, won.action: winner}
    update, delete = ActionType.UPDATE, ActionType.DELETE
    if row.kind == ConflictKind.UPDATE_AFTER_DELETE and {update, delete} <= by_action.keys():
        what = f"{who(by_action[update])} updated {record}, which {who(by_action[delete])} deleted"
    else:
        what = f"{who(loser)} and {who(winner)} changed {record} without seeing each other's change"
    if won.action is ActionType.DELETE:
        outcome, resolution = (
            f"the later change, the deletion from {who(winner)}, was kept",
            MANUAL_REVIEW_REQUIRED,
        )
    else:
        outcome, resolution = f"the later change, from {who(winner)}, was kept", KEPT_LATEST
    return StatusConflict(
        id=row.id,
        type=ConflictKind(row.kind),
        description=f"{what}; {outcome}",
        affected_records=[row.record_id],
        resolution=resolution,
        devices=[d for d in dict.fromkeys((winner, loser)) if d],
        table=table,
        detected_at=row.detected_at,
    )


def build_report(
    project: str,
    state: UserState,
    options: ReportOptions,
    now: datetime,
    support_contact: str | None,
) -> SyncStatusReport:
    devices = list(state.devices)
    horizon = options.last_hours * 3600

    def active(device: DeviceInfo) -> bool:
        return (now - device.last_seen).total_seconds() <= horizon

    syncs = [d.last_sync for d in devices if d.last_sync is not None]
    last_sync = max(syncs) if syncs else None
    lag = None if last_sync is None else max(0, int((now - last_sync).total_seconds()))
    active_count = sum(1 for d in devices if active(d))
    if state.open_conflicts:
        overall = OverallSyncStatus.CONFLICTS
    elif not active_count:
        overall = OverallSyncStatus.OFFLINE
    elif any(d.status in (DeviceStatus.PENDING, DeviceStatus.STALE) for d in devices):
        overall = OverallSyncStatus.DELAYED
    else:
        overall = OverallSyncStatus.HEALTHY
    conflicts = list(state.conflicts or ()) if options.check_conflicts else None
    return SyncStatusReport(
        project=project,
        user=state.user,
        sync_status=overall,
        last_sync=last_sync,
        sync_lag=None if lag is None else SyncLag(lag, "just now" if lag < 60 else span(lag)),
        total_devices=len(devices),
        active_devices=active_count,
        pending_syncs=sum((d.pending_up or 0) + d.pending_down for d in devices),
        devices=devices if options.include_devices else None,
        data_summary=DataSummary(
            total_actions=sum(t.actions for t in state.tables),
            unsynced_actions=sum(d.pending_up or 0 for d in devices),
            last_action=max((t.last_change for t in state.tables), default=None),
            tables=list(state.tables),
            conflicts_detected=state.open_conflicts,
        ),
        recommendations=recommendations(state, now, active),
        conflicts=conflicts,
        conflict_resolution=None if conflicts is None else _resolution(state, support_contact),
    )


def recommendations(
    state: UserState, now: datetime, active: Callable[[DeviceInfo], bool]
) -> list[str]:
    """Sentences a person can act on: conflicts first, then each device that needs something,
    then what is fine."""
    found = []
    if state.open_conflicts:
        n = state.open_conflicts
        found.append(
            f"{_count(n, 'conflict')} {'needs' if n == 1 else 'need'} review - list them with "
            "checkConflicts and settle each with resolveConflict"
        )
    if not state.devices:
        found.append("No device has synced yet - open the app on a device to start syncing")
    fine = 0
    for device in state.devices:
        name = display_name(device)
        if device.status is DeviceStatus.OFFLINE or not active(device):
            away = span((now - device.last_seen).total_seconds())
            found.append(f"{name} has not been seen for {away} - open the app to sync")
        elif device.status in (DeviceStatus.PENDING, DeviceStatus.STALE):
            waiting = []
            if device.pending_up:
                waiting.append(f"{_count(device.pending_up, 'pending change')}")
            if device.pending_down:
                waiting.append(f"{_count(device.pending_down, 'change')} to receive")
            stale = ""
            if device.status is DeviceStatus.STALE:
                stale = (
                    ", never synced"
                    if device.last_sync is None
                    else f", last synced {span((now - device.last_sync).total_seconds())} ago"
                )
            found.append(f"{name} has {' and '.join(waiting)}{stale} - sync recommended")
        else:
            fine += 1
    if fine and fine == len(state.devices):
        found.append("All devices are up to date")
    elif fine:
        found.append("All other devices are up to date")
    return found


def _resolution(state: UserState, support_contact: str | None) -> ConflictResolution:
    """Auto-resolvable when no open conflict needs a person: each record lives on with its
    later change, and confirming that is enough."""
    if not state.open_conflicts:
        action = "No conflicts to review"
    elif state.overlaps == state.open_conflicts:
        action = "Review overlapping sessions and delete duplicates"
    elif state.manual:
        action = (
            "Review the conflicts marked MANUAL_REVIEW_REQUIRED, where a deletion won over an "
            "edit: restore the edit with resolveConflict (APPLY_LOSER) or confirm the deletion "
            "(KEEP_WINNER)"
        )
    else:
        action = (
            "Check that the kept versions are right and confirm each with resolveConflict "
            "(KEEP_WINNER), or restore the other change (APPLY_LOSER)"
        )
    return ConflictResolution(not state.manual, action, support_contact)


def span(seconds: float) -> str:
    """A duration as people say it: "less than a minute", "2 minutes", "3 hours", "4 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return _count(int(seconds // size), unit)
    return "less than a minute"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
