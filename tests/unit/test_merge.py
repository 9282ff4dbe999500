"""The merge rules (DESIGN.md rule 4), one by one, on the pure function."""

from __future__ import annotations

import json

from gateway.sync.actions import ActionType
from gateway.sync.cursor import Position
from gateway.sync.merge import LogEntry, merge

INS, UPD, DEL = ActionType.INSERT, ActionType.UPDATE, ActionType.DELETE


def entry(n: int, action: ActionType, record: str = "r1", **data: object) -> LogEntry:
    return LogEntry(
        position=Position(0, n),
        table="t",
        record_id=record,
        action=action,
        json_data=None if action is DEL else json.dumps(data),
        sample_time=None,
        time=1000 + n,
        order=n,
        author=None,
        device_id=None,
    )


def shape(entries: list[LogEntry]) -> list[tuple[str, str, dict | None, int]]:
    return [
        (e.record_id, e.action.value, json.loads(e.json_data) if e.json_data else None, e.time)
        for e in entries
    ]


def test_insert_then_updates_become_one_insert_with_the_final_data() -> None:
    merged = merge([entry(1, INS, a=1, b=1), entry(2, UPD, b=2), entry(3, UPD, c=3)])
    assert shape(merged) == [("r1", "INSERT", {"a": 1, "b": 2, "c": 3}, 1003)]
    assert merged[0].position == Position(0, 3)


def test_updates_merge_into_one_update() -> None:
    assert shape(merge([entry(1, UPD, a=1), entry(2, UPD, a=2, b=2)])) == [
        ("r1", "UPDATE", {"a": 2, "b": 2}, 1002)
    ]


def test_insert_then_delete_disappears() -> None:
    assert merge([entry(1, INS, a=1), entry(2, UPD, a=2), entry(3, DEL)]) == []


def test_update_then_delete_becomes_delete() -> None:
    assert shape(merge([entry(1, UPD, a=1), entry(2, DEL)])) == [("r1", "DELETE", None, 1002)]


def test_delete_then_insert_stays_two_actions() -> None:
    assert shape(merge([entry(1, DEL), entry(2, INS, a=1)])) == [
        ("r1", "DELETE", None, 1001),
        ("r1", "INSERT", {"a": 1}, 1002),
    ]


def test_insert_delete_insert_keeps_the_last_insert() -> None:
    assert shape(merge([entry(1, INS, a=1), entry(2, DEL), entry(3, INS, a=3)])) == [
        ("r1", "INSERT", {"a": 3}, 1003)
    ]


def test_records_merge_independently_and_keep_log_order_of_their_last_action() -> None:
    merged = merge(
        [
            entry(1, INS, "r1", a=1),
            entry(2, INS, "r2", b=1),
            entry(3, UPD, "r1", a=2),
            entry(4, UPD, "r3", c=1),
        ]
    )
    assert shape(merged) == [
        ("r2", "INSERT", {"b": 1}, 1002),
        ("r1", "INSERT", {"a": 2}, 1003),
        ("r3", "UPDATE", {"c": 1}, 1004),
    ]


def test_same_record_id_in_different_tables_does_not_merge() -> None:
    other = LogEntry(
        position=Position(0, 2), table="other", record_id="r1", action=UPD,
        json_data='{"x":1}', sample_time=None, time=1002, order=2, author=None, device_id=None,
    )  # fmt: skip
    assert len(merge([entry(1, INS, a=1), other])) == 2
