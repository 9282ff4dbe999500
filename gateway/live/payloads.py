"""What travels on the bus: short text payloads that only say where to look again.

A payload names a kind of wake-up and its project: new actions of a user in some tables, sync
runs that changed, a project's status, a project's access. It carries no data: a woken reader
reads the log with its own cursor, so a payload may be lost, merged or repeated at no cost but
delay. Several payloads of one commit travel as one message (``pack``), so that a write sends
one NOTIFY, not one per kind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from gateway.sync.events import Changes

ACTIONS, RUNS, STATUS, ACCESS = "actions", "runs", "status", "access"  # the kinds

_STATUS = "status:"  # a status payload: the project code follows
_RUNS = "runs:"  # sync runs changed: "runs:<project id>:<run id>,<run id>..."
_RUNS_PER_PAYLOAD = 500  # keeps a payload far below NOTIFY's 8000 bytes
_ACCESS = "access:"  # access changed in a project: "access:<project id>"
_PACKED = "all:"  # several payloads in one message: "all:" + a JSON list of them
MAX_MESSAGE = 7_900  # bytes: under NOTIFY's 8000, with room for the channel's name


def encode(project_id: int, user: str, table_ids: Collection[int]) -> str:
    # The user id goes last: it is the only part that may contain the separator.
    return f"{project_id}:{','.join(map(str, sorted(table_ids)))}:{user}"


def encode_status(project: str) -> str:
    return _STATUS + project


def encode_access(project_id: int) -> str:
    return f"{_ACCESS}{project_id}"


def encode_runs(project_id: int, run_ids: Collection[int]) -> list[str]:
    ids = sorted(run_ids)
    return [
        f"{_RUNS}{project_id}:{','.join(map(str, ids[i : i + _RUNS_PER_PAYLOAD]))}"
        for i in range(0, len(ids), _RUNS_PER_PAYLOAD)
    ]


def payloads(changes: Changes) -> list[str]:
    """The payloads of one commit's ``changes``."""
    found = [encode(w.project_id, w.user, w.table_ids) for w in changes.written]
    runs: dict[int, set[int]] = defaultdict(set)
    for run in changes.runs:
        runs[run.project_id].add(run.id)
    found += [payload for project, ids in runs.items() for payload in encode_runs(project, ids)]
    found += [encode_status(project) for project in changes.statuses]
    return found + [encode_access(project_id) for project_id in changes.access]


def kind(payload: str) -> str:
    for prefix, name in ((_STATUS, STATUS), (_RUNS, RUNS), (_ACCESS, ACCESS)):
        if payload.startswith(prefix):
            return name
    return ACTIONS


def pack(found: list[str]) -> list[str]:
    """``found`` in as few messages as fit ``MAX_MESSAGE``: one for any ordinary commit."""
    if len(found) <= 1:
        return found
    messages: list[str] = []
    current: list[str] = []
    for payload in found:
        if current and len(_packed([*current, payload]).encode()) > MAX_MESSAGE:
            messages.append(_packed(current) if len(current) > 1 else current[0])
            current = []
        current.append(payload)
    messages.append(_packed(current) if len(current) > 1 else current[0])
    return messages


def _packed(found: list[str]) -> str:
    return _PACKED + json.dumps(found)


def unpack(message: str) -> list[str]:
    if not message.startswith(_PACKED):
        return [message]
    found = json.loads(message.removeprefix(_PACKED))
    if not isinstance(found, list) or not all(isinstance(p, str) for p in found):
        raise ValueError("not a list of payloads")
    return found


@dataclass(slots=True)
class Wakeups:
    """Decoded payloads, merged per project: what the hub is told at once."""

    actions: dict[tuple[int, str], set[int]] = field(default_factory=dict)
    runs: dict[int, set[int]] = field(default_factory=dict)
    statuses: set[str] = field(default_factory=set)
    access: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.actions or self.runs or self.statuses or self.access)

    def add(self, message: str) -> None:
        """Raises ValueError for a malformed message (after adding what it could read)."""
        for payload in unpack(message):
            self._add(payload)

    def _add(self, payload: str) -> None:
        if payload.startswith(_STATUS):
            self.statuses.add(payload.removeprefix(_STATUS))
        elif payload.startswith(_RUNS):
            project, ids = payload.removeprefix(_RUNS).split(":", 1)
            self.runs.setdefault(int(project), set()).update(int(i) for i in ids.split(",") if i)
        elif payload.startswith(_ACCESS):
            self.access.add(int(payload.removeprefix(_ACCESS)))
        else:
            project, tables, user = payload.split(":", 2)
            key = (int(project), user)
            self.actions.setdefault(key, set()).update(int(t) for t in tables.split(",") if t)

    def each(self) -> Iterator[str]:
        """The payloads again, one per project and kind."""
        for (project_id, user), tables in self.actions.items():
            yield encode(project_id, user, tables)
        for project_id, ids in self.runs.items():
            yield from encode_runs(project_id, ids)
        yield from map(encode_status, self.statuses)
        yield from map(encode_access, self.access)
