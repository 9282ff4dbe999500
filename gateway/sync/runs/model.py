"""What syncs and runs are: statuses, counters, trigger reasons, the values the API
answers with, and the checks of the texts a run carries."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.db.models import Sync, SyncRun
from gateway.errors import BadUserInput
from gateway.sync.runs.paging import Pagination

MAX_NAME = 255


MAX_TAG, MAX_STEP, MAX_ERROR_CODE = 100, 200, 100


TIMEOUT_CODE = "RUN_TIMEOUT"


CANCELED_CODE = "CANCELED"


SWEEP_BATCH = 500  # runs one sweep changes at most; the next sweep takes the rest


class SyncRunStatus(StrEnum):
    QUEUED = "QUEUED"  # scheduled for later
    WORKING = "WORKING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # an earlier run of the sync was still working


ACTIVE = (SyncRunStatus.QUEUED, SyncRunStatus.WORKING)


class ExchangeDirection(StrEnum):
    PUT = "PUT"  # from the device or job into the project
    GET = "GET"  # from the project to the device or job
    BOTH = "BOTH"


@dataclass(frozen=True, slots=True)
class Counters:
    """Census's counters; None leaves a counter as it is."""

    source_record_count: int | None = None
    records_failed: int | None = None
    source_record_updates: int | None = None
    source_record_deletes: int | None = None
    source_record_invalids: int | None = None
    records_invalid: int | None = None
    records_processed: int | None = None
    records_updated: int | None = None

    def given(self) -> dict[str, int]:
        """The counters given, checked: none may be negative."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        given = {name: value for name, value in values.items() if value is not None}
        for name, value in given.items():
            if value < 0:
                field = "counters." + _camel(name)
                raise BadUserInput(f"{field} cannot be negative", field=field)
        return given


COUNTER_NAMES = tuple(f.name for f in fields(Counters))


@dataclass(frozen=True, slots=True)
class TriggerReason:
    ui_tag: str  # short, e.g. "Manual", "API", "Device"
    ui_detail: str | None = None  # e.g. who triggered it


def device_trigger(what: str, device_id: str, username: str, user: str) -> TriggerReason:
    """Why the gateway recorded a run of a device's sync: what the device did, who for whom."""
    return TriggerReason("Device", f"{what} from device {device_id} by {username} for {user}")


@dataclass(frozen=True, slots=True)
class SyncInfo:
    id: int
    project: str
    name: str
    device_id: str | None
    direction: ExchangeDirection
    include_tables: list[str] | None
    exclude_tables: list[str] | None
    owner: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    sync_id: int
    project_id: int
    owner: str  # the sync's owner, for role filtering
    status: SyncRunStatus
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    scheduled_execution_time: datetime | None
    error_code: str | None
    error_message: str | None
    error_detail: str | None
    counters: dict[str, int]  # every counter, by its name in COUNTER_NAMES
    full_sync: bool
    trigger: TriggerReason
    canceled: bool
    current_step: str | None


@dataclass(frozen=True, slots=True)
class RunPage:
    pagination: Pagination
    runs: list[RunInfo]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def to_run(r: SyncRun | Any, owner: str) -> RunInfo:
    """``r`` is a SyncRun or a row of its columns."""
    assert r.id is not None
    return RunInfo(
        id=r.id,
        sync_id=r.sync_id,
        project_id=r.project_id,
        owner=owner,
        status=SyncRunStatus(r.status),
        created_at=r.created_at,
        updated_at=r.updated_at,
        completed_at=r.completed_at,
        scheduled_execution_time=r.scheduled_execution_time,
        error_code=r.error_code,
        error_message=r.error_message,
        error_detail=r.error_detail,
        counters={name: getattr(r, name) for name in COUNTER_NAMES},
        full_sync=r.full_sync,
        trigger=TriggerReason(r.trigger_ui_tag, r.trigger_ui_detail),
        canceled=r.canceled,
        current_step=r.current_step,
    )


def to_sync(s: Sync, project: str) -> SyncInfo:
    assert s.id is not None
    return SyncInfo(
        id=s.id,
        project=project,
        name=s.name,
        device_id=s.device_id,
        direction=ExchangeDirection(s.direction),
        include_tables=s.include_tables,
        exclude_tables=s.exclude_tables,
        owner=s.owner_id,
        created_by=s.created_by,
        created_at=s.created_at,
    )
