"""Merging within one returned batch (DESIGN.md rule 4, SenSeeAct's read):

- INSERT followed by UPDATEs of the same record: one INSERT with the final data;
- UPDATE followed by UPDATEs: one UPDATE carrying every changed field;
- INSERT ... DELETE: nothing (the reader never needs to know the record existed);
- UPDATE ... DELETE: one DELETE.

A merged action takes its place, time, order and sample time from the last action it stands
for. Anything else (a DELETE followed by a new INSERT) is passed on as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gateway.sync.actions import ActionType
from gateway.sync.cursor import Position


# Not frozen (like the other value objects): one is built per action read, and a frozen
# dataclass's __init__ costs three times as much. Nothing changes one after it is built.
@dataclass(slots=True)
class LogEntry:
    position: Position
    table: str
    record_id: str
    action: ActionType
    json_data: str | None
    sample_time: int | None
    time: int
    order: int
    author: str | None
    device_id: str | None
    written_by: str | None = None  # the user who wrote it (log reads only; see reader.py)


def merge(entries: Sequence[LogEntry]) -> list[LogEntry]:
    """The batch with each record's run of mergeable actions folded into one, in log order of
    the last action of each run."""
    out: list[LogEntry | None] = []
    pending: dict[tuple[str, str], int] = {}  # record -> index in ``out`` of its open run
    for entry in entries:
        key = (entry.table, entry.record_id)
        index = pending.get(key)
        if index is not None:
            earlier = out[index]
            assert earlier is not None
            folded = _fold(earlier, entry)
            if len(folded) < 2:
                out[index] = None
                if not folded:
                    del pending[key]
                    continue
                entry = folded[0]
        pending[key] = len(out)
        out.append(entry)
    return [entry for entry in out if entry is not None]


def _fold(earlier: LogEntry, later: LogEntry) -> tuple[LogEntry, ...]:
    """What replaces two consecutive actions on one record: one merged action, nothing, or
    both as they are."""
    match earlier.action, later.action:
        case ((ActionType.INSERT | ActionType.UPDATE), ActionType.UPDATE):
            data = json.loads(earlier.json_data or "{}") | json.loads(later.json_data or "{}")
            return (replace(later, action=earlier.action, json_data=compact_json(data)),)
        case ActionType.INSERT, ActionType.DELETE:
            return ()
        case ActionType.UPDATE, ActionType.DELETE:
            return (later,)
    return (earlier, later)


def fold_record(entries: Sequence[LogEntry]) -> LogEntry | None:
    """One record's actions (in log order) as the single INSERT a first sync delivers for it:
    its data after them all, with the place, time and order of the last; None when they leave
    it deleted. As the writer plays them: an UPDATE of a deleted record (a last-writer-wins
    winner) brings it back with its last data."""
    data: dict[str, object] | None = None
    live = pristine = False  # pristine: the last INSERT unchanged since, its text as sent
    for entry in entries:
        if entry.action is ActionType.DELETE:
            live = False
            continue
        changes = json.loads(entry.json_data or "{}")
        if entry.action is ActionType.INSERT:
            data, pristine = changes, True
        else:
            data, pristine = (data or {}) | changes, False
        live = True
    if not live:
        return None
    last = entries[-1]
    text = last.json_data if pristine else compact_json(data)
    return replace(last, action=ActionType.INSERT, json_data=text)


def compact_json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
