"""Validation of incoming actions against their table, on the pure functions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput
from gateway.sync import keyset, validation
from gateway.sync.actions import ActionType
from gateway.sync.cursor import Cursor, Position
from gateway.sync.validation import (
    ActionProblem,
    normalize_record_id,
    parse_data,
    record_key,
    sample_time,
)
from tests.support.sync import TABLES

STEPS, MOODS, NOTES, CASES = TABLES
RID = "4beadd197f784a4a8c2e1118915fb0c3"


def test_record_ids_are_normalized_to_the_seeds_form() -> None:
    assert normalize_record_id(RID.upper()) == RID
    assert normalize_record_id("4beadd19-7f78-4a4a-8c2e-1118915fb0c3") == RID
    for bad in ("", "xyz", RID[:-1], RID + "0", "4beadd19-7f784a4a-8c2e-1118915fb0c3"):
        with pytest.raises(ActionProblem, match="not a UUID"):
            normalize_record_id(bad)


@pytest.mark.parametrize(
    ("action", "json_data", "message"),
    [
        (ActionType.INSERT, None, "needs jsonData"),
        (ActionType.INSERT, "{not json", "not valid JSON"),
        (ActionType.INSERT, "[1, 2]", "must be a JSON object"),
        (ActionType.INSERT, '{"utcTime": 1}', "required field(s) missing: value"),
        (ActionType.INSERT, '{"utcTime": 1, "value": null}', "required"),
        (ActionType.INSERT, '{"utcTime": 1, "value": 2, "bogus": 1}', "'bogus' is not declared"),
        (ActionType.INSERT, '{"utcTime": "1", "value": 2}', "'utcTime' must be INT"),
        (ActionType.INSERT, '{"utcTime": 1.5, "value": 2}', "'utcTime' must be INT"),
        (ActionType.INSERT, '{"utcTime": true, "value": 2}', "'utcTime' must be INT"),
        (ActionType.INSERT, '{"utcTime": 1, "value": "2"}', "'value' must be FLOAT"),
        (ActionType.INSERT, '{"utcTime": 1, "value": 2, "note": 5}', "'note' must be STRING"),
        (ActionType.UPDATE, '{"value": false}', "'value' must be FLOAT"),
        (ActionType.UPDATE, '{"id": "00000000000000000000000000000001"}', "jsonData.id"),
        (ActionType.UPDATE, '{"user": "mallory"}', "jsonData.user"),
        (ActionType.DELETE, '{"value": 1}', "a DELETE carries no jsonData"),
    ],
)
def test_bad_json_data_is_refused(action: ActionType, json_data: str | None, message: str) -> None:
    with pytest.raises(ActionProblem) as caught:
        parse_data(action, json_data, STEPS, RID, "alice")
    assert message in str(caught.value)


def test_good_data_passes_with_subsets_for_updates_and_matching_id_and_user() -> None:
    data = f'{{"utcTime": 5, "value": 2, "id": "{RID.upper()}", "user": "alice"}}'
    assert parse_data(ActionType.INSERT, data, STEPS, RID, "alice") == {
        "utcTime": 5, "value": 2, "id": RID.upper(), "user": "alice",
    }  # fmt: skip
    assert parse_data(ActionType.UPDATE, '{"note": null}', STEPS, RID, "alice") == {"note": None}
    assert parse_data(ActionType.DELETE, None, STEPS, RID, "alice") is None
    assert parse_data(
        ActionType.INSERT, '{"text": "x", "done": true, "extra": [1, {}]}', NOTES, RID, "a"
    )


def test_datetime_fields_must_be_iso_times() -> None:
    with pytest.raises(ActionProblem, match="'localTime' must be DATETIME"):
        parse_data(ActionType.INSERT, '{"localTime": "yesterday"}', MOODS, RID, "alice")
    assert parse_data(
        ActionType.INSERT, '{"localTime": "2015-09-20T10:30:00.000"}', MOODS, RID, "a"
    )


def test_sample_time_from_utc_time_or_local_time_read_as_utc() -> None:
    assert sample_time(STEPS, {"utcTime": 1442737800000, "value": 1}) == 1442737800000
    assert sample_time(MOODS, {"localTime": "2015-09-20T10:30:00.000"}) == 1442745000000
    assert sample_time(NOTES, {"text": "x", "utcTime": 5}) is None
    assert sample_time(STEPS, None) is None


def test_record_key_is_the_key_field_or_the_record_id() -> None:
    assert record_key(CASES, RID, {"caseKey": "448048926", "age": 3}) == "448048926"
    assert record_key(NOTES, RID, {"text": "x"}) == RID


def test_cursors_round_trip_and_refuse_garbage() -> None:
    cursor = Cursor(Position(1602, 17), time=1442921356748, order=3)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(Cursor(Position(0, 5)).encode()) == Cursor(Position(0, 5))
    for garbage in ("", "abc", "MTphOmI6Yzpk", Cursor(Position(0, 1)).encode()[:-2] + "!!"):
        with pytest.raises(BadUserInput, match="invalid progress cursor"):
            Cursor.decode(garbage)


@pytest.mark.parametrize("kind", list(keyset.CursorKind))
def test_a_list_cursor_is_refused_by_every_other_list(kind: keyset.CursorKind) -> None:
    cursor = keyset.encode(42, kind)
    assert keyset.decode(cursor, kind) == 42
    for other in set(keyset.CursorKind) - {kind}:
        with pytest.raises(BadUserInput, match="invalid cursor"):
            keyset.decode(cursor, other)


_TEXT = st.text(alphabet=st.sampled_from(["a", " ", "{", "[", "\\", "\x00", "\ud800", "é", "😀"]))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


@given(
    data=st.dictionaries(_TEXT, _JSON, max_size=4),
    ascii_only=st.booleans(),
    max_depth=st.integers(1, 6),
)
@settings(max_examples=300, deadline=None)
def test_the_quick_content_check_never_passes_what_the_walk_refuses(
    data: dict[str, object], ascii_only: bool, max_depth: int
) -> None:
    """The walk over a record (nesting, NUL, unpaired surrogates) is skipped only where its
    text shows it would pass: written with escapes or as they are, nested or flat."""
    text = json.dumps(data, ensure_ascii=ascii_only)
    if validation._plainly_storable(text, max_depth):
        validation._check_content(json.loads(text), max_depth)  # does not raise


@pytest.mark.parametrize(
    ("json_data", "message"),
    [
        ('{"text": "a\\u0000b"}', "NUL character"),
        ('{"text": "\\ud800"}', "unpaired surrogate"),
        ('{"text": "\ud800"}', "unpaired surrogate"),
        ('{"text": "x", "extra": ' + "[" * 40 + "]" * 40 + "}", "nests deeper"),
    ],
)
def test_unstorable_or_deep_data_is_still_refused(json_data: str, message: str) -> None:
    with pytest.raises(ActionProblem, match=message):
        parse_data(ActionType.INSERT, json_data, NOTES, RID, "alice")
