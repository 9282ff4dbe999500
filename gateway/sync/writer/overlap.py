"""Per-table overlap detection (RegardingWork's overlapping sessions).

A table declared with ``overlap: {start, end}`` holds ranges. When a device writes a record of
such a table whose range overlaps the range of a live record of the same user written by
another device (``start < their end`` and ``their start < end``: touching ends do not
overlap), both records are kept and a ``SESSION_OVERLAP`` conflict is recorded for review,
listed like the other conflicts. Its ``winner`` is the record that was there first and its
``loser`` the new one, each with its ``recordId``; settling it is a person's job (delete the
duplicate, then confirm with ``KEEP_WINNER``). A pair already open is not recorded twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import Conflict, Record
from gateway.sync.conflicts import ConflictKind, ConflictStatus, Version, versions_at
from gateway.sync.tables import FieldType
from gateway.sync.writer.model import Checked

MAX_OVERLAPS = 20  # overlapping records one written record is checked against, at most


def _bound(value: Any, kind: FieldType) -> Any:
    """A range bound as the database compares it; None when it is not one."""
    if kind is FieldType.DATETIME:
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


async def detect_overlaps(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str | None,
    written: Mapping[tuple[int, str], tuple[Checked, dict[str, Any] | None, bool]],
    positions: Mapping[int, int],
    now: datetime,
) -> list[dict[str, Any]]:
    """The SESSION_OVERLAP conflict rows of a device's batch, its records already stored."""
    if device_id is None:
        return []  # whose device wrote it is unknown: no two devices to speak of
    rows: list[dict[str, Any]] = []
    for c, data, deleted in written.values():
        overlap = c.table.spec.overlap
        if overlap is None or deleted or data is None:
            continue
        types = {f.name: f.type for f in c.table.spec.fields}
        kind = types[overlap[0]]
        start, end = (_bound(data.get(name), kind) for name in overlap)
        if start is None or end is None or not start < end:
            continue
        rows += await _overlapping(
            session, project_id, user, device_id, c, data, (start, end), kind, positions, now
        )
    return rows


async def _overlapping(
    session: AsyncSession,
    project_id: int,
    user: str,
    device_id: str,
    c: Checked,
    data: dict[str, Any],
    bounds: tuple[Any, Any],
    kind: FieldType,
    positions: Mapping[int, int],
    now: datetime,
) -> list[dict[str, Any]]:
    assert c.table.spec.overlap is not None
    first, last = c.table.spec.overlap
    if kind is FieldType.DATETIME:
        their_start, their_end = Record.data[first].as_string(), Record.data[last].as_string()  # type: ignore[index]
    else:
        their_start, their_end = Record.data[first].as_float(), Record.data[last].as_float()  # type: ignore[index]
    others = (
        await session.scalars(
            select(Record)
            .where(
                Record.project_id == project_id,
                Record.user_id == user,
                Record.table_id == c.table.id,
                Record.record_id != c.record_id,
                Record.deleted.is_(False),  # type: ignore[attr-defined]
                Record.device_id.is_not(None),  # type: ignore[union-attr]
                Record.device_id != device_id,
                their_start < bounds[1],
                their_end > bounds[0],
            )
            .order_by(Record.position)
            .limit(MAX_OVERLAPS)
        )
    ).all()
    if not others:
        return []
    ids = [o.record_id for o in others]
    open_pairs = {
        frozenset((row.record_id, (row.winner or {}).get("recordId")))
        for row in await session.scalars(
            select(Conflict).where(
                Conflict.project_id == project_id,
                Conflict.user_id == user,
                Conflict.table_id == c.table.id,
                Conflict.kind == ConflictKind.SESSION_OVERLAP.value,
                Conflict.status == ConflictStatus.OPEN.value,
                or_(
                    Conflict.record_id == c.record_id,
                    Conflict.record_id.in_(ids),  # type: ignore[attr-defined]
                ),
            )
        )
    }
    versions = await versions_at(session, [o.position for o in others])
    position = positions[c.index]
    mine = Version(device_id, c.action, c.source.time, c.source.order, position, data, c.record_id)
    key_field = c.table.spec.key_field
    key = str(data.get(key_field, c.record_id)) if key_field else c.record_id
    found = []
    for other in others:
        if frozenset((c.record_id, other.record_id)) in open_pairs:
            continue
        theirs = versions.get(other.position)
        if theirs is None:
            continue
        theirs = dataclasses.replace(theirs, data=other.data, record_id=other.record_id)
        found.append(
            {
                "project_id": project_id,
                "table_id": c.table.id,
                "user_id": user,
                "record_id": c.record_id,
                "record_key": key[:255],
                "kind": ConflictKind.SESSION_OVERLAP.value,
                "policy": c.table.spec.conflict_policy.value,
                "status": ConflictStatus.OPEN.value,
                "winner": theirs.to_json(),
                "loser": mine.to_json(),
                "detected_at": now,
            }
        )
    return found
