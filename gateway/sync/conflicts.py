"""Conflict detection: a device changed a record that someone else changed unseen.

An UPDATE or DELETE from a device is *concurrent* when the record's current version came from
another writer and lies after what the device has received of its table (its delivered
progress), or, when the action names a ``baseVersion``, when the record changed since that
version. An UPDATE of a record another writer deleted is ``UPDATE_AFTER_DELETE``.

The table's policy decides: ``REJECT`` refuses the batch with ``CONFLICT`` and the current
record; ``LAST_WRITER_WINS`` applies the two changes in (time, order) order. When the incoming
action is the later one it is applied as usual; when it is the earlier one it still enters the
log (a retry must find it, a reviewer may want it) but *superseded*: it does not change the
record and readers skip it, so every device ends on the winner. Either way the conflict is
recorded for review (``conflict_review``). A DELETE of a record another writer already deleted
is superseded without a conflict: both wanted it gone.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.dialect import in_values
from gateway.db.models import Action, DeliveredProgress, Record
from gateway.sync.actions import ActionType
from gateway.sync.cursor import Position


class ConflictKind(StrEnum):
    CONCURRENT_UPDATE = "CONCURRENT_UPDATE"
    UPDATE_AFTER_DELETE = "UPDATE_AFTER_DELETE"
    SESSION_OVERLAP = "SESSION_OVERLAP"  # two devices' records cover overlapping ranges


class ConflictStatus(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True)
class Version:
    """One side of a conflict: a change of the record, as its action carried it."""

    device_id: str | None
    action: ActionType
    time: int
    order: int
    position: int | None  # the action's place in the log; None until it is written
    data: dict[str, Any] | None
    record_id: str | None = None  # SESSION_OVERLAP: the record (the two sides differ)

    @property
    def mark(self) -> tuple[int, int]:
        return (self.time, self.order)

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "action": self.action.value,
            "time": self.time,
            "order": self.order,
            "position": self.position,
            "data": self.data,
        } | ({"recordId": self.record_id} if self.record_id else {})

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Version:
        return cls(
            device_id=raw["deviceId"],
            action=ActionType(raw["action"]),
            time=raw["time"],
            order=raw["order"],
            position=raw["position"],
            data=raw["data"],
            record_id=raw.get("recordId"),
        )


def changed_unseen(
    record: Record, device_id: str | None, seen: Position | None, base_version: int | None
) -> bool:
    """Whether ``record`` changed after the version the writer worked from."""
    if base_version is not None:
        return record.position != base_version
    if device_id is None or record.device_id == device_id:
        # Without a device (or a baseVersion) the gateway cannot know what the writer saw.
        return False
    return seen is None or Position(record.xid, record.position) > seen


def current_record(table: str, record: Record) -> dict[str, Any]:
    """The record as a refused device needs it to rebase (``extensions.currentRecord``)."""
    return {
        "table": table,
        "recordId": record.record_id,
        "key": record.record_key,
        "data": record.data,
        "deleted": record.deleted,
        "position": record.position,
        "deviceId": record.device_id,
    }


async def delivered_positions(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    table_ids: Collection[int],
) -> dict[int, Position]:
    """What ``user``'s device has received of each table."""
    if device_id is None or not table_ids:
        return {}
    rows = await session.execute(
        select(DeliveredProgress.table_id, DeliveredProgress.xid, DeliveredProgress.position).where(
            DeliveredProgress.project_id == project_id,
            DeliveredProgress.user_id == user,
            DeliveredProgress.device_id == device_id,
            DeliveredProgress.table_id.in_(sorted(table_ids)),  # type: ignore[attr-defined]
        )
    )
    return {r.table_id: Position(r.xid, r.position) for r in rows}


async def versions_at(session: AsyncSession, positions: Collection[int]) -> dict[int, Version]:
    """The changes that made records what they are, by log position."""
    if not positions:
        return {}
    rows = await session.execute(
        select(
            Action.id,
            Action.device_id,
            Action.action,
            Action.time,
            Action.action_order,
            Action.json_data,
        ).where(in_values(session, Action.id, sorted(positions)))
    )
    return {
        r.id: Version(
            device_id=r.device_id,
            action=ActionType(r.action),
            time=r.time,
            order=r.action_order,
            position=r.id,
            data=None if r.json_data is None else json.loads(r.json_data),
        )
        for r in rows
    }


@dataclass(frozen=True, slots=True)
class Detected:
    """A conflict found while playing a batch under LAST_WRITER_WINS."""

    kind: ConflictKind
    table_id: int
    record_id: str
    record_key: str
    theirs: Version
    mine: Version  # position still None: the action is not written yet
    mine_wins: bool

    def row(self, project_id: int, user: str, position: int, now: datetime) -> dict[str, Any]:
        mine = Version(
            self.mine.device_id,
            self.mine.action,
            self.mine.time,
            self.mine.order,
            position,
            self.mine.data,
        )
        winner, loser = (mine, self.theirs) if self.mine_wins else (self.theirs, mine)
        return {
            "project_id": project_id,
            "table_id": self.table_id,
            "user_id": user,
            "record_id": self.record_id,
            "record_key": self.record_key,
            "kind": self.kind.value,
            "policy": "LAST_WRITER_WINS",
            "status": ConflictStatus.OPEN.value,
            "winner": winner.to_json(),
            "loser": loser.to_json(),
            "detected_at": now,
        }
