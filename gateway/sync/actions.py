"""Database actions as the domain sees them: what a device sends, and what a reader receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ActionType(StrEnum):
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


#: By stored value: a dict lookup per action read instead of the enum's call.
ACTION_TYPES: dict[str, ActionType] = {kind.value: kind for kind in ActionType}


@dataclass(frozen=True, slots=True)
class IncomingAction:
    """One action as a device writes it (SenSeeAct's database action)."""

    table: str
    user: str
    action: ActionType
    record_id: str
    json_data: str | None
    time: int
    order: int
    sample_time: int | None = None
    source: str | None = None
    author: str | None = None
    # The record version (its ``position``) the device based this change on: with it, any
    # other change since is a conflict, whatever the device has read.
    base_version: int | None = None


@dataclass(slots=True)  # not frozen: see LogEntry (one per action delivered)
class DeliveredAction:
    """One action as a reader receives it, possibly merged from several in the log."""

    table: str
    user: str
    action: ActionType
    record_id: str
    json_data: str | None
    sample_time: int | None
    time: int
    order: int
    source: str
    author: str | None
    device_id: str | None
    position: int  # of the (last) action in the log: the record's version after it


@dataclass(frozen=True, slots=True)
class InvalidAction:
    index: int
    code: str
    reason: str
    detail: Mapping[str, Any] | None = None  # e.g. the current record of a refused conflict

    def to_json(self) -> dict[str, Any]:
        found = {"index": self.index, "code": self.code, "reason": self.reason}
        return found | dict(self.detail or {})
