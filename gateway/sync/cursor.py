"""Log positions and the opaque per-table cursors the gateway hands out (DESIGN.md rule 2)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gateway.errors import BadUserInput

INT64_MAX = 2**63 - 1
_VERSION = "1"


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the log, ordered as readers see it: by the writing transaction (``xid``, 0
    on SQLite), then by ``id``."""

    xid: int
    id: int


#: Before every action (ids start at 1).
START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a reader is in one table, with SenSeeAct's (time, order) of the last action it
    received from that table, which is data about the device's own clock, not a position."""

    position: Position
    time: int | None = None
    order: int | None = None

    def encode(self) -> str:
        time = "" if self.time is None else str(self.time)
        order = "" if self.order is None else str(self.order)
        raw = f"{_VERSION}:{self.position.xid}:{self.position.id}:{time}:{order}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            version, xid, id_, time, order = (
                base64.urlsafe_b64decode(padded.encode()).decode().split(":")
            )
            if version != _VERSION:
                raise ValueError(version)
            position = Position(int(xid), int(id_))
            cursor = cls(
                position=position,
                time=int(time) if time else None,
                order=int(order) if order else None,
            )
            numbers = (position.xid, position.id, cursor.time or 0, cursor.order or 0)
            if not all(0 <= n <= INT64_MAX for n in numbers):  # what the log's columns hold
                raise ValueError(numbers)
            return cursor
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise BadUserInput(
                f"invalid progress cursor {token!r}: use a cursor the gateway returned",
                field="progress",
            ) from exc

    def advanced_to(self, position: Position) -> Cursor:
        """This cursor moved forward to ``position`` (never backward)."""
        if position <= self.position:
            return self
        return Cursor(position, self.time, self.order)


START_CURSOR = Cursor(START)
