"""Opaque keyset cursors for Relay connections: a row id, tagged with the list it belongs to so
a cursor from one list is refused by another."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum, unique

from gateway.errors import BadUserInput

MAX_PAGE = 500
INT64_MAX = 2**63 - 1


@unique  # one tag per list: a cursor of one list must not be accepted by another
class CursorKind(StrEnum):
    RECORDS = "r"
    SYNC_EVENTS = "e"
    PENDING_CASES = "c"
    CONFLICTS = "k"  # "c" until conflicts and cases pending sync accepted each other's cursors


def encode(row_id: int, kind: CursorKind) -> str:
    return base64.urlsafe_b64encode(f"{kind.value}:{row_id}".encode()).decode().rstrip("=")


def decode(cursor: str, kind: CursorKind) -> int:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        found, _, value = raw.partition(":")
        if found != kind.value:
            raise ValueError(found)
        row_id = int(value)
        if not 0 <= row_id <= INT64_MAX:  # row ids are 64-bit
            raise ValueError(row_id)
        return row_id
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadUserInput(f"invalid cursor {cursor!r}", field="after") from exc


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
