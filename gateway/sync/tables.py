"""Declared tables: their fields and types, and the rules a table definition must follow."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.errors import BadUserInput

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
UTC_TIME = "utcTime"
LOCAL_TIME = "localTime"
# Every record carries these (SenSeeAct's jsonData has "id" and "user"); they are not declared.
RESERVED_FIELDS = frozenset({"id", "user"})
MAX_FIELDS = 200


class ConflictPolicy(StrEnum):
    """What happens when a device changes a record another device changed unseen."""

    LAST_WRITER_WINS = "LAST_WRITER_WINS"  # applied in (time, order) order; conflict recorded
    REJECT = "REJECT"  # the batch is refused with CONFLICT; the device rebases


class FieldType(StrEnum):
    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    JSON = "JSON"


# utcTime is epoch milliseconds; localTime is an ISO local time without a zone (SenSeeAct's
# "2015-09-20T10:30:00.000"). Declaring them with another type would make sampleTime meaningless.
_TIME_FIELD_TYPES = {
    UTC_TIME: {FieldType.INT},
    LOCAL_TIME: {FieldType.DATETIME, FieldType.STRING},
}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "required": self.required}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(name=data["name"], type=FieldType(data["type"]), required=data["required"])


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    key_field: str | None = None
    conflict_policy: ConflictPolicy = ConflictPolicy.LAST_WRITER_WINS
    # (start, end): two devices' records whose [start, end) ranges overlap are a conflict.
    overlap: tuple[str, str] | None = None

    @property
    def has_utc_time(self) -> bool:
        return any(f.name == UTC_TIME for f in self.fields)

    @property
    def has_local_time(self) -> bool:
        return any(f.name == LOCAL_TIME for f in self.fields)


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadUserInput(
            f"invalid {kind} name {name!r}: use 1 to 64 letters, digits and underscores, "
            "starting with a letter",
            field=kind,
        )
    return name


def build_table_spec(
    name: str,
    fields: Iterable[FieldSpec],
    key_field: str | None,
    conflict_policy: ConflictPolicy = ConflictPolicy.LAST_WRITER_WINS,
    overlap: tuple[str, str] | None = None,
) -> TableSpec:
    """Validate a table definition; every problem is ``BadUserInput``."""
    check_name("table", name)
    specs = tuple(fields)
    if not specs:
        raise BadUserInput(f"table {name!r} needs at least one field", field="fields")
    if len(specs) > MAX_FIELDS:
        raise BadUserInput(f"a table has at most {MAX_FIELDS} fields", field="fields")
    seen: set[str] = set()
    for spec in specs:
        check_name("field", spec.name)
        if spec.name in RESERVED_FIELDS:
            raise BadUserInput(
                f"field {spec.name!r} is reserved: every record has 'id' and 'user'",
                field="fields",
            )
        if spec.name in seen:
            raise BadUserInput(f"field {spec.name!r} is declared twice", field="fields")
        seen.add(spec.name)
        allowed = _TIME_FIELD_TYPES.get(spec.name)
        if allowed and spec.type not in allowed:
            names = " or ".join(sorted(t.value for t in allowed))
            raise BadUserInput(f"field {spec.name!r} must be of type {names}", field="fields")
    if key_field is not None and key_field not in seen:
        raise BadUserInput(f"keyField {key_field!r} is not a declared field", field="keyField")
    if overlap is not None:
        check_overlap(overlap, {spec.name: spec for spec in specs})
    return TableSpec(
        name=name,
        fields=specs,
        key_field=key_field,
        conflict_policy=conflict_policy,
        overlap=overlap,
    )


# Types whose values order as the ranges they bound: numbers, and DATETIME's ISO text.
OVERLAP_TYPES = (FieldType.INT, FieldType.FLOAT, FieldType.DATETIME)


def check_overlap(overlap: tuple[str, str], fields: Mapping[str, FieldSpec]) -> None:
    start, end = overlap
    if start == end:
        raise BadUserInput("overlap needs two different fields", field="overlap")
    for name in overlap:
        spec = fields.get(name)
        if spec is None:
            raise BadUserInput(f"overlap field {name!r} is not a declared field", field="overlap")
        if spec.type not in OVERLAP_TYPES:
            raise BadUserInput(
                f"overlap field {name!r} must be INT, FLOAT or DATETIME", field="overlap"
            )
    if fields[start].type is not fields[end].type:
        raise BadUserInput("overlap's start and end must have the same type", field="overlap")
