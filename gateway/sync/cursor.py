"""Log positions and the opaque per-table cursors the gateway hands out (DESIGN.md rule 2)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gateway.errors import BadUserInput

INT64_MAX = 2**63 - 1
_VERSION = "1"
_SNAPSHOT = "s"  # a cursor inside a first sync's snapshot (see snapshot.py)


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the log, ordered as readers see it: by the writing transaction (``xid``, 0
    on SQLite), then by ``id``."""

    xid: int
    id: int


#: Before every action (ids start at 1).
START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class SnapshotMark:
    """Part way through a first sync's snapshot: the table's records as they were at
    ``horizon``, delivered up to the record with row id ``after``."""

    horizon: Position
    after: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a reader is in one table, with SenSeeAct's (time, order) of the last action it
    received from that table, which is data about the device's own clock, not a position.

    Inside a snapshot, ``position`` stays at START (nothing of the log itself has been received
    yet: what the device got so far counts as delivered only once the snapshot is complete) and
    ``snapshot`` says where the snapshot stands."""

    position: Position
    time: int | None = None
    order: int | None = None
    snapshot: SnapshotMark | None = None

    def encode(self) -> str:
        time = "" if self.time is None else str(self.time)
        order = "" if self.order is None else str(self.order)
        if self.snapshot is None:
            where = f"{_VERSION}:{self.position.xid}:{self.position.id}"
        else:
            at = self.snapshot.horizon
            where = f"{_SNAPSHOT}:{at.xid}:{at.id}:{self.snapshot.after}"
        raw = f"{where}:{time}:{order}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            version, *parts = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
            snapshot = None
            if version == _VERSION:
                xid, id_, time, order = parts
                position = Position(int(xid), int(id_))
                numbers = [position.xid, position.id]
            elif version == _SNAPSHOT:
                xid, id_, after, time, order = parts
                snapshot = SnapshotMark(Position(int(xid), int(id_)), int(after))
                position = START
                numbers = [snapshot.horizon.xid, snapshot.horizon.id, snapshot.after]
            else:
                raise ValueError(version)
            cursor = cls(
                position=position,
                time=int(time) if time else None,
                order=int(order) if order else None,
                snapshot=snapshot,
            )
            numbers += [cursor.time or 0, cursor.order or 0]
            if not all(0 <= n <= INT64_MAX for n in numbers):  # what the log's columns hold
                raise ValueError(numbers)
            return cursor
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise BadUserInput(
                f"invalid progress cursor {token!r}: use a cursor the gateway returned",
                field="progress",
            ) from exc

    def advanced_to(self, position: Position) -> Cursor:
        """This cursor moved forward to ``position`` (never backward; a snapshot cursor stays
        where it is until its snapshot is complete)."""
        if position <= self.position or self.snapshot is not None:
            return self
        return Cursor(position, self.time, self.order)


START_CURSOR = Cursor(START)
