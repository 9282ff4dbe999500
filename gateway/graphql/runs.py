"""Syncs and sync runs (Census's list-sync-runs), their lifecycle and live updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.arguments import ProjectCode, RunId, SyncId
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.scalars import Long
from gateway.live.runs import sync_run_changes
from gateway.sync import runs as domain
from gateway.sync.runs.paging import DEFAULT_PER_PAGE, Pagination, SortOrder

SortOrderEnum = described_enum(
    SortOrder,
    name="SortOrder",
    description="The order of runs by creation time.",
    values={"ASC": "Oldest first.", "DESC": "Newest first."},
)
SyncRunStatus = described_enum(
    domain.SyncRunStatus,
    name="SyncRunStatus",
    description="Where a sync run is in its life.",
    values={
        "QUEUED": "Scheduled for later; it starts when that time comes.",
        "WORKING": "Running now.",
        "COMPLETED": "Finished successfully.",
        "FAILED": "Failed, timed out or was canceled.",
        "SKIPPED": "Not run, because an earlier run of the sync was still working.",
    },
)
ExchangeDirection = described_enum(
    domain.ExchangeDirection,
    name="ExchangeDirection",
    description="What a sync carries.",
    values={
        "PUT": "Data into the project, from the device or job.",
        "GET": "Data out of the project, to the device or job.",
        "BOTH": "Both ways.",
    },
)

PageNumber = Annotated[
    int, strawberry.argument(description="The page to return, from 1 (0 is taken as 1).")
]
RunsPerPage = Annotated[int, strawberry.argument(description="Runs per page, 1 to 100.")]
RunOrder = Annotated[
    SortOrderEnum,  # type: ignore[valid-type]
    strawberry.argument(description="By creation time: DESC (newest first, the default) or ASC."),
]


@strawberry.type(description="A named exchange between a project and a device or external job.")
class Sync:
    id: int = strawberry.field(description="The sync's id (what startSyncRun and syncRuns take).")
    project: str = strawberry.field(description="The project's code.")
    name: str = strawberry.field(description="Its name, e.g. the job's or the device's.")
    device_id: str | None = strawberry.field(description="Null for an external job.")
    direction: ExchangeDirection = strawberry.field(description="What it carries.")
    include_tables: list[str] | None = strawberry.field(
        description="Only these tables (null: every table)."
    )
    exclude_tables: list[str] | None = strawberry.field(
        description="Never these tables (null: none)."
    )
    owner: str = strawberry.field(description="The user whose data it syncs.")
    created_by: str = strawberry.field(description="Who created it.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @classmethod
    def from_domain(cls, s: domain.SyncInfo) -> Sync:
        return cls(
            id=s.id,
            project=s.project,
            name=s.name,
            device_id=s.device_id,
            direction=s.direction,
            include_tables=s.include_tables,
            exclude_tables=s.exclude_tables,
            owner=s.owner,
            created_by=s.created_by,
            created_at=s.created_at,
        )


@strawberry.type(description="What triggered a run.")
class SyncTriggerReason:
    ui_tag: str = strawberry.field(description='Short, e.g. "Manual", "API", "Device".')
    ui_detail: str | None = strawberry.field(description="Longer, e.g. who triggered it.")


@strawberry.input(description="What triggered a run.")
class SyncTriggerReasonInput:
    ui_tag: str = strawberry.field(description='Short, e.g. "Manual", "API", "Schedule".')
    ui_detail: str | None = strawberry.field(
        default=None, description="Longer, e.g. who triggered it."
    )


@strawberry.input(description="A run's counters; each one given is set (not added).")
class SyncRunCounters:
    source_record_count: Long | None = strawberry.field(
        default=None, description="Records in the source at the time of the run."
    )
    records_failed: Long | None = strawberry.field(
        default=None, description="Records rejected by the destination."
    )
    source_record_updates: Long | None = strawberry.field(
        default=None, description="New or updated records found in the source."
    )
    source_record_deletes: Long | None = strawberry.field(
        default=None, description="Records deleted in the source."
    )
    source_record_invalids: Long | None = strawberry.field(
        default=None, description="Source records skipped because of data quality issues."
    )
    records_invalid: Long | None = strawberry.field(
        default=None, description="The same as sourceRecordInvalids (both names are kept)."
    )
    records_processed: Long | None = strawberry.field(
        default=None, description="Records sent to the destination."
    )
    records_updated: Long | None = strawberry.field(
        default=None, description="Records successfully sent to the destination."
    )

    def to_domain(self) -> domain.Counters:
        return domain.Counters(
            **{name: getattr(self, name) for name in domain.COUNTER_NAMES}  # same names
        )


@strawberry.type(description="One execution of a sync, with its counters.")
class SyncRun:
    id: int = strawberry.field(description="The run's id.")
    sync_id: int = strawberry.field(description="The id of the sync it is a run of.")
    created_at: datetime = strawberry.field(description="When it was started (or scheduled).")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    completed_at: datetime | None = strawberry.field(
        description="When it finished (COMPLETED, FAILED or SKIPPED)."
    )
    error_code: str | None = strawberry.field(
        description="Why it failed, as a code (failSyncRun's errorCode), or an error a "
        "COMPLETED run met without failing (completeSyncRun's errorCode); else null."
    )
    error_message: str | None = strawberry.field(
        description="Why it failed, for people; null unless given."
    )
    error_detail: str | None = strawberry.field(
        description="More about the failure, e.g. a log excerpt; null unless given."
    )
    status: SyncRunStatus = strawberry.field(description="Where it is in its life.")
    source_record_count: Long = strawberry.field(
        description="Records in the source at the time of the run."
    )
    records_failed: Long = strawberry.field(description="Records rejected by the destination.")
    source_record_updates: Long = strawberry.field(
        description="New or updated records found in the source."
    )
    source_record_deletes: Long = strawberry.field(description="Records deleted in the source.")
    source_record_invalids: Long = strawberry.field(
        description="Source records skipped because of data quality issues."
    )
    records_invalid: Long = strawberry.field(
        description="The same as sourceRecordInvalids (both names are kept)."
    )
    records_processed: Long = strawberry.field(description="Records sent to the destination.")
    records_updated: Long = strawberry.field(
        description="Records successfully sent to the destination."
    )
    scheduled_execution_time: datetime | None = strawberry.field(
        description="When a QUEUED run is to start; null when it started at once."
    )
    full_sync: bool = strawberry.field(
        description="Whether it syncs everything, not only what changed since the last run."
    )
    sync_trigger_reason: SyncTriggerReason = strawberry.field(description="What triggered it.")
    canceled: bool = strawberry.field(description="Whether it was canceled (it is then FAILED).")
    current_step: str | None = strawberry.field(
        description="What it is doing now, as the job last reported it; null once it is finished."
    )

    @classmethod
    def from_domain(cls, r: domain.RunInfo) -> SyncRun:
        return cls(
            id=r.id,
            sync_id=r.sync_id,
            created_at=r.created_at,
            updated_at=r.updated_at,
            completed_at=r.completed_at,
            error_code=r.error_code,
            error_message=r.error_message,
            error_detail=r.error_detail,
            status=r.status,
            **{name: Long(value) for name, value in r.counters.items()},
            scheduled_execution_time=r.scheduled_execution_time,
            full_sync=r.full_sync,
            sync_trigger_reason=SyncTriggerReason(
                ui_tag=r.trigger.ui_tag, ui_detail=r.trigger.ui_detail
            ),
            canceled=r.canceled,
            current_step=r.current_step,
        )


@strawberry.type(name="Pagination", description="Where a page is among all pages.")
class PaginationInfo:
    total_records: int = strawberry.field(description="Runs on all pages together.")
    per_page: int = strawberry.field(description="Runs per page.")
    prev_page: int | None = strawberry.field(description="Null on the first page.")
    page: int = strawberry.field(description="This page's number, from 1.")
    next_page: int | None = strawberry.field(description="Null from the last page on.")
    last_page: int = strawberry.field(description="The last page with records (1 if none).")

    @classmethod
    def from_domain(cls, p: Pagination) -> PaginationInfo:
        return cls(
            total_records=p.total_records,
            per_page=p.per_page,
            prev_page=p.prev_page,
            page=p.page,
            next_page=p.next_page,
            last_page=p.last_page,
        )


@strawberry.type(description="One page of sync runs.")
class SyncRunPage:
    pagination: PaginationInfo = strawberry.field(description="Where this page is among all pages.")
    data: list[SyncRun] = strawberry.field(description="The runs of this page.")

    @classmethod
    def from_domain(cls, page: domain.RunPage) -> SyncRunPage:
        return cls(
            pagination=PaginationInfo.from_domain(page.pagination),
            data=[SyncRun.from_domain(r) for r in page.runs],
        )


PAGE_HELP = "page starts at 1 (0 means 1); perPage is 1 to 100."


@strawberry.type
class SyncRunQuery:
    @strawberry.field(description="The syncs of a project whose data you may see.")
    async def syncs(
        self,
        info: Info,
        project: ProjectCode,
    ) -> list[Sync]:
        found = await domain.list_syncs(info.context.db, info.context.principal, project)
        return [Sync.from_domain(s) for s in found]

    @strawberry.field(description="One sync; NOT_FOUND when it does not exist or is not yours.")
    async def sync(
        self,
        info: Info,
        id: SyncId,
    ) -> Sync:
        return Sync.from_domain(await domain.get_sync(info.context.db, info.context.principal, id))

    @strawberry.field(description="One run; NOT_FOUND when it does not exist or is not yours.")
    async def sync_run(
        self,
        info: Info,
        id: RunId,
    ) -> SyncRun:
        run = await domain.get_run(info.context.db, info.context.principal, id)
        return SyncRun.from_domain(run)

    @strawberry.field(description=f"A sync's runs by creation time. {PAGE_HELP}")
    async def sync_runs(
        self,
        info: Info,
        sync_id: SyncId,
        page: PageNumber = 1,
        per_page: RunsPerPage = DEFAULT_PER_PAGE,
        order: RunOrder = SortOrder.DESC,
    ) -> SyncRunPage:
        found = await domain.list_runs(
            info.context.db,
            info.context.principal,
            sync_id,
            page=page,
            per_page=per_page,
            order=order,
        )
        return SyncRunPage.from_domain(found)

    @strawberry.field(
        description=f"The runs of a project's syncs you may see, optionally of one status, by "
        f"creation time. {PAGE_HELP}"
    )
    async def project_sync_runs(
        self,
        info: Info,
        project: ProjectCode,
        status: Annotated[
            SyncRunStatus | None,
            strawberry.argument(description="Only runs in this status (omitted: all)."),
        ] = None,
        page: PageNumber = 1,
        per_page: RunsPerPage = DEFAULT_PER_PAGE,
        order: RunOrder = SortOrder.DESC,
    ) -> SyncRunPage:
        found = await domain.list_project_runs(
            info.context.db,
            info.context.principal,
            project,
            status=status,
            page=page,
            per_page=per_page,
            order=order,
        )
        return SyncRunPage.from_domain(found)


@strawberry.type
class SyncRunMutation:
    @strawberry.mutation(
        description="A sync for an external job, or for a device (one each; a device's sync is "
        "otherwise created on its first exchange). user: whose data (default: yours)."
    )
    async def create_sync(
        self,
        info: Info,
        project: ProjectCode,
        name: Annotated[str, strawberry.argument(description="Its name, e.g. the job's.")],
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="The device it syncs, for a device's sync (omitted: an external job's)."
            ),
        ] = None,
        direction: Annotated[
            ExchangeDirection,
            strawberry.argument(description="What it carries (default: both ways)."),
        ] = domain.ExchangeDirection.BOTH,
        include_tables: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only these tables (omitted or empty: every table of the project)."
            ),
        ] = None,
        exclude_tables: Annotated[
            list[str] | None,
            strawberry.argument(description="Never these tables, even when included."),
        ] = None,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data it syncs: a user id (omitted: yours); only that user "
                "and admins manage it."
            ),
        ] = None,
    ) -> Sync:
        sync = await domain.create_sync(
            info.context.db,
            info.context.principal,
            project,
            name,
            device_id=device_id,
            direction=direction,
            include_tables=include_tables,
            exclude_tables=exclude_tables,
            user=user,
        )
        return Sync.from_domain(sync)

    @strawberry.mutation(
        description="A new run: WORKING; SKIPPED while an earlier run of the sync works; "
        "QUEUED when scheduled for later (it starts when that time comes)."
    )
    async def start_sync_run(
        self,
        info: Info,
        sync_id: SyncId,
        full_sync: Annotated[
            bool,
            strawberry.argument(
                description="It syncs everything, not only what changed since the last run."
            ),
        ] = False,
        sync_trigger_reason: Annotated[
            SyncTriggerReasonInput | None,
            strawberry.argument(description='What triggered it (omitted: "API").'),
        ] = None,
        scheduled_execution_time: Annotated[
            datetime | None,
            strawberry.argument(
                description="Start it at this time instead of now (it is QUEUED until then)."
            ),
        ] = None,
    ) -> SyncRun:
        reason = sync_trigger_reason
        run = await domain.start_sync_run(
            info.context.db,
            info.context.principal,
            sync_id,
            full_sync=full_sync,
            trigger=domain.TriggerReason(reason.ui_tag, reason.ui_detail) if reason else None,
            scheduled_execution_time=scheduled_execution_time,
            events=info.context.services,
        )
        return SyncRun.from_domain(run)

    @strawberry.mutation(description="Set counters (totals so far) and the step of a WORKING run.")
    async def update_sync_run(
        self,
        info: Info,
        id: RunId,
        counters: Annotated[
            SyncRunCounters | None,
            strawberry.argument(
                description="Counters to set (totals so far); those not given keep their values."
            ),
        ] = None,
        current_step: Annotated[
            str | None, strawberry.argument(description='What it is doing now, e.g. "uploading".')
        ] = None,
    ) -> SyncRun:
        run = await domain.update_sync_run(
            info.context.db,
            info.context.principal,
            id,
            counters.to_domain() if counters else None,
            current_step,
            events=info.context.services,
        )
        return SyncRun.from_domain(run)

    @strawberry.mutation(
        description="A WORKING run finished, with final counters: COMPLETED, optionally with "
        "an error that did not fail it (e.g. some records the destination rejected). Its "
        "currentStep is cleared."
    )
    async def complete_sync_run(
        self,
        info: Info,
        id: RunId,
        counters: Annotated[
            SyncRunCounters | None,
            strawberry.argument(
                description="Final counters to set; those not given keep their values."
            ),
        ] = None,
        error_code: Annotated[
            str | None,
            strawberry.argument(
                description="An error the run met without failing, as a short code, e.g. "
                '"JSON_ARRAY_ERROR".'
            ),
        ] = None,
        error_message: Annotated[
            str | None,
            strawberry.argument(description="That error, for people (needs errorCode)."),
        ] = None,
        error_detail: Annotated[
            str | None,
            strawberry.argument(description="More about it, e.g. the field (needs errorCode)."),
        ] = None,
    ) -> SyncRun:
        run = await domain.complete_sync_run(
            info.context.db,
            info.context.principal,
            id,
            counters.to_domain() if counters else None,
            error_code=error_code,
            error_message=error_message,
            error_detail=error_detail,
            events=info.context.services,
        )
        return SyncRun.from_domain(run)

    @strawberry.mutation(description="A QUEUED or WORKING run failed.")
    async def fail_sync_run(
        self,
        info: Info,
        id: RunId,
        error_code: Annotated[
            str, strawberry.argument(description='Why it failed, as a short code, e.g. "TIMEOUT".')
        ],
        error_message: Annotated[
            str | None, strawberry.argument(description="Why it failed, for people.")
        ] = None,
        error_detail: Annotated[
            str | None,
            strawberry.argument(description="More about the failure, e.g. a log excerpt."),
        ] = None,
    ) -> SyncRun:
        run = await domain.fail_sync_run(
            info.context.db,
            info.context.principal,
            id,
            error_code,
            error_message,
            error_detail,
            events=info.context.services,
        )
        return SyncRun.from_domain(run)

    @strawberry.mutation(description="Cancel a QUEUED or WORKING run: FAILED, canceled.")
    async def cancel_sync_run(
        self,
        info: Info,
        id: RunId,
    ) -> SyncRun:
        run = await domain.cancel_sync_run(
            info.context.db, info.context.principal, id, events=info.context.services
        )
        return SyncRun.from_domain(run)


@strawberry.type
class SyncRunSubscription:
    @strawberry.subscription(
        description="Sync runs live: first the QUEUED and WORKING runs you may see (of syncId "
        "when given), then every run as its status or counters change."
    )
    async def sync_run_updated(
        self,
        info: Info,
        project: ProjectCode,
        sync_id: Annotated[
            int | None,
            strawberry.argument(
                description="Only the runs of this sync (omitted: of every sync you may see)."
            ),
        ] = None,
    ) -> AsyncGenerator[SyncRun, None]:
        context = info.context
        with context.subscription_slot():
            async for run in sync_run_changes(
                context.services.run_feeds,
                context.db,
                context.services.hub,
                context.principal,
                project,
                sync_id,
                context.services.settings.live_poll_seconds,
            ):
                yield SyncRun.from_domain(run)
