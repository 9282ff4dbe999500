"""Playing a checked batch over the current records as one writer sees them: whether each
action fits (no INSERT of a live record, no change of a missing one), and how changes made since
the writer last read are settled (``REJECT`` refuses the batch; ``LAST_WRITER_WINS`` records a
conflict and applies the later change)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.db.models import Record
from gateway.errors import Conflict, ValidationFailed
from gateway.sync.actions import ActionType, InvalidAction
from gateway.sync.conflicts import ConflictKind, Detected, Version, changed_unseen, current_record
from gateway.sync.cursor import Position
from gateway.sync.tables import ConflictPolicy
from gateway.sync.validation import sample_time
from gateway.sync.writer.checks import refuse
from gateway.sync.writer.model import Checked

Final = dict[tuple[int, str], tuple[Checked, dict[str, Any] | None, bool]]


@dataclass(slots=True)
class Played:
    final: Final  # each touched record's final (last applied action, data, deleted)
    superseded: set[int]  # indexes of last-writer-wins losers
    conflicts: list[tuple[Checked, Detected]]


@dataclass(slots=True)
class _State:
    live: bool
    data: dict[str, Any] | None
    stored: Record | None  # the record as stored, until this batch changes it


class Writer:
    """Plays a batch over the current records as one writer (a device, or none) sees them."""

    def __init__(self, device_id: str | None, seen: dict[int, Position]) -> None:
        self.device_id = device_id
        self.seen = seen

    def _unseen(self, c: Checked, stored: Record | None) -> bool:
        return (
            stored is not None
            and c.action is not ActionType.INSERT
            and changed_unseen(
                stored, self.device_id, self.seen.get(c.table.id), c.source.base_version
            )
        )

    def contested(self, new: list[Checked], records: dict[tuple[int, str], Record]) -> set[int]:
        """Log positions of the changes the batch may conflict with."""
        return {
            stored.position
            for c in new
            if self._unseen(c, stored := records.get(c.record)) and stored is not None
        }

    def play(
        self,
        new: list[Checked],
        records: dict[tuple[int, str], Record],
        versions: dict[int, Version],
    ) -> Played:
        """Play the new actions over the current records; refuse the batch if any does not
        fit or conflicts under REJECT."""
        state = {key: _State(not r.deleted, r.data, r) for key, r in records.items()}
        played = Played(final={}, superseded=set(), conflicts=[])
        problems: list[InvalidAction] = []
        for c in new:
            s = state.get(c.record) or _State(False, None, None)
            if self._unseen(c, s.stored):
                assert s.stored is not None
                outcome = self._contest(c, s, versions[s.stored.position], played)
                if outcome is not None:
                    problems.append(outcome)
                if outcome is not None or c.index in played.superseded:
                    continue
            if c.action is ActionType.INSERT and s.live:
                problems.append(
                    InvalidAction(c.index, ValidationFailed.code, "record already exists")
                )
                continue
            if c.action is not ActionType.INSERT and not s.live:
                problems.append(
                    InvalidAction(c.index, ValidationFailed.code, "record does not exist")
                )
                continue
            data = s.data
            if c.action is ActionType.INSERT:
                data = c.data
            elif c.action is ActionType.UPDATE:
                data = (data or {}) | (c.data or {})
            live = c.action is not ActionType.DELETE
            # A DELETE keeps the record's last sample time, so time-range readers receive it.
            c.sample_time = sample_time(c.table.spec, data)
            state[c.record] = _State(live, data, None)
            played.final[c.record] = (c, data, not live)
        refuse(problems)
        return played

    def _contest(
        self, c: Checked, s: _State, theirs: Version, played: Played
    ) -> InvalidAction | None:
        """Settle an action against an unseen change: a refusal (REJECT), or the action is
        superseded or goes on to be applied (LAST_WRITER_WINS, conflict recorded)."""
        assert s.stored is not None
        if not s.live and c.action is ActionType.DELETE:
            played.superseded.add(c.index)  # deleted twice: no conflict, nothing to apply
            return None
        kind = ConflictKind.CONCURRENT_UPDATE if s.live else ConflictKind.UPDATE_AFTER_DELETE
        if c.table.spec.conflict_policy is ConflictPolicy.REJECT:
            return InvalidAction(
                c.index,
                Conflict.code,
                f"{kind.value}: the record changed since the version this device worked from; "
                "read it again and rebase the change",
                detail={
                    "conflict": kind.value,
                    "currentRecord": current_record(c.table.name, s.stored),
                },
            )
        mine = Version(self.device_id, c.action, c.source.time, c.source.order, None, c.data)
        wins = mine.mark >= theirs.mark  # a tie goes to the later arrival
        played.conflicts.append(
            (c, Detected(kind, c.table.id, c.record_id, s.stored.record_key, theirs, mine, wins))
        )
        if not wins:
            played.superseded.add(c.index)
            c.sample_time = sample_time(c.table.spec, (s.data or {}) | (c.data or {}))
        elif not s.live:
            s.live = True  # a later UPDATE brings the deleted record back
        return None
