"""Records as whole documents, the shape offline-first databases such as RxDB replicate.

A document is a record's current data (every field it holds, however many partial UPDATEs
built it), its ``id`` (the recordId) and ``_deleted``. A field that is null or absent is the
same thing in a document: absent. Names starting with ``_`` belong to the client's database
(RxDB's ``_meta``, ``_rev``, ``_attachments``), never to the data, and are not compared.

Pure functions: ``replication`` reads and writes the records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadUserInput, LimitExceeded
from gateway.sync.actions import ActionType, IncomingAction
from gateway.sync.tables import RESERVED_FIELDS
from gateway.sync.validation import ActionProblem, normalize_record_id

ID, DELETED = "id", "_deleted"
SOURCE = "rxdb"  # the ``source`` label of the actions a push writes
_ORDERS = 2**31  # an action's order is a 32-bit int


@dataclass(frozen=True, slots=True)
class Stored:
    """A record as it is now: enough to compare with what a client assumed, and to change."""

    record_id: str
    data: Mapping[str, Any] | None
    deleted: bool
    position: int  # the log id of the action that last changed it


@dataclass(frozen=True, slots=True)
class PushRow:
    """One document a client wrote: the state it last had from the server (None: it thinks
    there is none) and the state it wants."""

    assumed: Mapping[str, Any] | None
    new: Mapping[str, Any]


def document(record_id: str, data: Mapping[str, Any] | None, deleted: bool) -> dict[str, Any]:
    """A record as a document: its data without nulls, its id and its deleted flag."""
    doc = {k: v for k, v in (data or {}).items() if v is not None}
    doc[ID] = record_id
    doc[DELETED] = deleted
    return doc


def content(doc: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """What two documents must share to be the same: data (no id, nulls, client fields) and
    the deleted flag."""
    data = {k: v for k, v in doc.items() if k != ID and not k.startswith("_") and v is not None}
    return data, doc.get(DELETED) is True


def same(assumed: Mapping[str, Any] | None, master: Stored | None) -> bool:
    """RxDB's rule: a push fits when the state it assumed is the server's current state."""
    if master is None or assumed is None:
        return master is None and assumed is None
    return equal(content(assumed), content(document(master.record_id, master.data, master.deleted)))


def equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 and 1.0 are one number (JavaScript has no other), but true is not 1
    (as Python's ``==`` would have it)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return (numbers or type(a) is type(b)) and a == b


def check_rows(rows: list[PushRow], max_depth: int) -> list[str]:
    """Each row's record id, checked before anything is read: every document an object with a
    string ``id`` in the gateway's form (32 lower-case hex digits, which is what pulls return,
    so a client never ends with two copies of one record), ``_deleted`` a boolean if given,
    nested at most ``max_depth`` deep (GATEWAY_MAX_JSON_DEPTH: a record holds no deeper data),
    the assumed state of the same record, and no record twice."""
    ids: list[str] = []
    for index, row in enumerate(rows):
        where = f"rows[{index}]"
        record_id = _checked_id(row.new, f"{where}.newDocumentState", max_depth)
        if row.assumed is not None:
            other = _checked_id(row.assumed, f"{where}.assumedMasterState", max_depth)
            if other != record_id:
                raise BadUserInput(
                    f"{where}: assumedMasterState is of record {other!r}, "
                    f"newDocumentState of {record_id!r}",
                    field="rows",
                )
        if record_id in ids:
            raise BadUserInput(f"{where}: record {record_id!r} is pushed twice", field="rows")
        ids.append(record_id)
    return ids


def _checked_id(doc: Any, where: str, max_depth: int) -> str:
    if not isinstance(doc, Mapping):
        raise BadUserInput(f"{where} must be a JSON object", field="rows")
    if _deeper_than(doc, max_depth):
        raise LimitExceeded(f"{where} nests deeper than {max_depth} levels", limit=max_depth)
    deleted = doc.get(DELETED, False)
    if not isinstance(deleted, bool):
        raise BadUserInput(f"{where}.{DELETED} must be true or false", field="rows")
    record_id = doc.get(ID)
    if not isinstance(record_id, str):
        raise BadUserInput(f"{where} needs an {ID!r} (the recordId) as a string", field="rows")
    try:
        normal = normalize_record_id(record_id)
    except ActionProblem as exc:
        raise BadUserInput(f"{where}: {exc}", field="rows") from exc
    if normal != record_id:
        raise BadUserInput(
            f"{where}: id {record_id!r} must be written as {normal!r} (32 lower-case hex "
            "digits), the form the gateway returns",
            field="rows",
        )
    return record_id


def _deeper_than(doc: Mapping[str, Any], max_depth: int) -> bool:
    """Without recursion: a hostile document may nest thousands of levels."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list):
            if depth > max_depth:
                return True
            values = item.values() if isinstance(item, Mapping) else item
            stack.extend((value, depth + 1) for value in values)
    return False


def change(
    table: str, user: str, row: PushRow, master: Stored | None, time: int
) -> IncomingAction | None:
    """The action that makes ``master`` the row's new document (None: nothing to change). An
    UPDATE carries the fields that changed, and null for those the document no longer has, so
    the record ends exactly as the document; its version is the one the row was checked
    against, so the writer sees no other conflict."""
    data, deleted = content(row.new)
    live = master is not None and not master.deleted
    # Unique per record: each change of a record is based on another version of it.
    order = master.position % _ORDERS if master is not None else 0

    def action(kind: ActionType, changed: dict[str, Any] | None) -> IncomingAction:
        return IncomingAction(
            table=table,
            user=user,
            action=kind,
            record_id=row.new[ID],
            json_data=None if changed is None else json.dumps(changed),
            time=time,
            order=order,
            source=SOURCE,
            base_version=master.position if master is not None else None,
        )

    if deleted:
        return action(ActionType.DELETE, None) if live else None
    if not live:
        return action(ActionType.INSERT, data)
    assert master is not None
    current = {k: v for k, v in (master.data or {}).items() if v is not None}
    changed = {k: v for k, v in data.items() if k not in current or not equal(current[k], v)}
    changed |= {k: None for k in current if k not in data and k not in RESERVED_FIELDS}
    return action(ActionType.UPDATE, changed) if changed else None
