"""Reviewing recorded conflicts: listing them, and resolving one.

Resolving with ``KEEP_WINNER`` only closes the conflict: the log already holds the winner.
``APPLY_LOSER`` makes the losing change current by writing it again as a new action of the
resolver, later in (time, order) than anything on the record, so that every device receives it
through the log like any other change (the losing action itself stays superseded).
"""

from __future__ import annotations

import json
import time as clock
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.access import may_see_user, visible_users
from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Action, Project, ProjectTable, Record
from gateway.db.models import Conflict as ConflictRow
from gateway.db.types import utcnow
from gateway.errors import BadUserInput, Conflict, NotFound
from gateway.sync import keyset
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.conflicts import ConflictKind, ConflictStatus, Version
from gateway.sync.events import NO_EVENTS, Changes, Events, Written
from gateway.sync.projects import require_project
from gateway.sync.tables import ConflictPolicy
from gateway.sync.writer import WriteOutcome, WriteRequest, write_in_transaction

_CURSOR_KIND = keyset.CursorKind.CONFLICTS


class Resolution(StrEnum):
    KEEP_WINNER = "KEEP_WINNER"
    APPLY_LOSER = "APPLY_LOSER"


@dataclass(frozen=True, slots=True)
class ConflictInfo:
    id: int
    project: str
    table: str
    user: str
    record_id: str
    key: str
    kind: ConflictKind
    policy: ConflictPolicy
    status: ConflictStatus
    winner: Version
    loser: Version
    detected_at: datetime
    resolution: Resolution | None
    resolved_by: str | None
    resolved_at: datetime | None

    @property
    def cursor(self) -> str:
        return keyset.encode(self.id, _CURSOR_KIND)

    @property
    def devices(self) -> list[str]:
        """The writers involved, winner first (a change without a device counts as "")."""
        return [self.winner.device_id or "", self.loser.device_id or ""]


@dataclass(frozen=True, slots=True)
class ConflictPage:
    conflicts: list[ConflictInfo]
    has_next_page: bool


async def list_conflicts(
    db: Database,
    principal: Principal,
    project: str,
    *,
    status: ConflictStatus | None = None,
    user: str | None = None,
    first: int = 50,
    after: str | None = None,
) -> ConflictPage:
    """Conflicts newest first, of the users whose data the caller may see."""
    keyset.check_first(first)
    async with db.session() as session:
        found = await require_project(session, project)
        assert found.id is not None
        query = (
            select(ConflictRow, ProjectTable.name)
            .join(ProjectTable, ProjectTable.id == ConflictRow.table_id)
            .where(ConflictRow.project_id == found.id)
        )
        visible = await visible_users(session, principal, found)
        if visible is not None:
            query = query.where(ConflictRow.user_id.in_(sorted(visible)))  # type: ignore[attr-defined]
        if user is not None:
            query = query.where(ConflictRow.user_id == user)
        if status is not None:
            query = query.where(ConflictRow.status == status.value)
        if after is not None:
            query = query.where(ConflictRow.id < keyset.decode(after, _CURSOR_KIND))  # type: ignore[operator]
        rows = (
            await session.execute(query.order_by(ConflictRow.id.desc()).limit(first + 1))  # type: ignore[union-attr]
        ).all()
    return ConflictPage(
        [_info(project, row, table) for row, table in rows[:first]],
        has_next_page=len(rows) > first,
    )


async def resolve_conflict(
    db: Database,
    principal: Principal,
    conflict_id: int,
    resolution: Resolution,
    *,
    events: Events = NO_EVENTS,
) -> ConflictInfo:
    """Close an open conflict; with ``APPLY_LOSER`` write the losing change again so it wins.
    Whoever may write the user's data may resolve its conflicts."""
    outcome: WriteOutcome | None = None
    async with db.transaction() as session:
        row = await session.get(ConflictRow, conflict_id, with_for_update=True)
        found = None if row is None else await session.get(Project, row.project_id)
        if (
            row is None
            or found is None
            or not await may_see_user(session, principal, found, row.user_id)
        ):
            raise NotFound(f"conflict {conflict_id} does not exist", field="id")
        if row.status != ConflictStatus.OPEN.value:
            raise Conflict(
                f"conflict {conflict_id} was already resolved ({row.resolution})",
                resolution=row.resolution,
            )
        table = await session.get(ProjectTable, row.table_id)
        assert table is not None
        project = found.code
        if resolution is Resolution.APPLY_LOSER and row.kind == ConflictKind.SESSION_OVERLAP:
            # Both records are current already; nothing "lost" to write again.
            raise BadUserInput(
                "an overlap keeps both records: delete the duplicate, then resolve with "
                "KEEP_WINNER",
                field="resolution",
            )
        if resolution is Resolution.APPLY_LOSER:
            action = await _reapply(session, row, table.name, principal.user_id)
            if action is not None:
                outcome = await write_in_transaction(
                    session,
                    principal,
                    WriteRequest(project=project, actions=[action], user=row.user_id),
                )
        row.status = ConflictStatus.RESOLVED.value
        row.resolution = resolution.value
        row.resolved_by = principal.user_id
        row.resolved_at = utcnow()
        info = _info(project, row, table.name)
        changes = Changes(statuses=[project])
        if outcome is not None and outcome.accepted:
            changes.written.append(
                Written(
                    outcome.project_id, outcome.user, outcome.table_ids, None, len(outcome.accepted)
                )
            )
        await events.staged(session, changes)
    await events.committed(changes)
    return info


async def _reapply(
    session: AsyncSession, row: ConflictRow, table: str, author: str
) -> IncomingAction | None:
    """The loser's change as a new action that comes after everything on the record; None
    when the record already is what the loser wanted (deleted)."""
    loser = Version.from_json(row.loser)
    record = await session.scalar(
        select(Record).where(
            Record.project_id == row.project_id,
            Record.user_id == row.user_id,
            Record.table_id == row.table_id,
            Record.record_id == row.record_id,
        )
    )
    assert record is not None  # a conflict is only ever recorded on an existing record
    latest = await session.scalar(
        select(func.max(Action.time)).where(
            Action.project_id == row.project_id,
            Action.user_id == row.user_id,
            Action.table_id == row.table_id,
            Action.record_id == row.record_id,
        )
    )
    when = max(int(clock.time() * 1000), (latest or 0) + 1)
    if loser.action is ActionType.DELETE:
        if record.deleted:
            return None
        kind, data = ActionType.DELETE, None
    elif record.deleted:  # bring it back as the loser had it
        kind, data = ActionType.INSERT, (record.data or {}) | (loser.data or {})
    else:
        kind, data = ActionType.UPDATE, loser.data or {}
    return IncomingAction(
        table=table,
        user=row.user_id,
        action=kind,
        record_id=row.record_id,
        json_data=None if data is None else json.dumps(data),
        time=when,
        order=0,
        author=author,
    )


def _info(project: str, row: ConflictRow, table: str) -> ConflictInfo:
    assert row.id is not None
    return ConflictInfo(
        id=row.id,
        project=project,
        table=table,
        user=row.user_id,
        record_id=row.record_id,
        key=row.record_key,
        kind=ConflictKind(row.kind),
        policy=ConflictPolicy(row.policy),
        status=ConflictStatus(row.status),
        winner=Version.from_json(row.winner),
        loser=Version.from_json(row.loser),
        detected_at=row.detected_at,
        resolution=Resolution(row.resolution) if row.resolution else None,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )
