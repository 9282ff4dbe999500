"""Syncs and sync runs (Census's list-sync-runs), their lifecycle and live updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from gateway.graphql.context import Info
from gateway.graphql.scalars import Long
from gateway.live.runs import sync_run_changes
from gateway.sync import runs as domain
from gateway.sync.runs.paging import DEFAULT_PER_PAGE, Pagination, SortOrder

SortOrderEnum = strawberry.enum(SortOrder, name="SortOrder", description="By creation time.")
SyncRunStatus = strawberry.enum(
    domain.SyncRunStatus,
    name="SyncRunStatus",
    description="QUEUED: scheduled for later. WORKING: executing. COMPLETED: finished "
    "successfully. FAILED: failed, timed out or canceled. SKIPPED: an earlier run of the sync "
    "was still working.",
)
ExchangeDirection = strawberry.enum(
    domain.ExchangeDirection,
    name="ExchangeDirection",
    description="What a sync carries: PUT into the project, GET out of it, or BOTH.",
)


@strawberry.type(description="A named exchange between a project and a device or external job.")
class Sync:
    id: int
    project: str
    name: str
    device_id: str | None = strawberry.field(description="Null for an external job.")
    direction: ExchangeDirection
    include_tables: list[str] | None
    exclude_tables: list[str] | None
    owner: str = strawberry.field(description="The user whose data it syncs.")
    created_by: str
    created_at: datetime

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
    ui_tag: str
    ui_detail: str | None = None


@strawberry.input(description="Census's counters of a run; each one given is set (not added).")
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
        default=None, description="The same as sourceRecordInvalids (Census keeps both)."
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


@strawberry.type(description="One execution of a sync, with Census's counters.")
class SyncRun:
    id: int
    sync_id: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = strawberry.field(
        description="When it finished (COMPLETED, FAILED or SKIPPED)."
    )
    error_code: str | None
    error_message: str | None
    error_detail: str | None
    status: SyncRunStatus
    source_record_count: Long
    records_failed: Long
    source_record_updates: Long
    source_record_deletes: Long
    source_record_invalids: Long
    records_invalid: Long
    records_processed: Long
    records_updated: Long
    scheduled_execution_time: datetime | None
    full_sync: bool
    sync_trigger_reason: SyncTriggerReason
    canceled: bool
    current_step: str | None

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


@strawberry.type(name="Pagination", description="Census's page navigation.")
class PaginationInfo:
    total_records: int
    per_page: int
    prev_page: int | None = strawberry.field(description="Null on the first page.")
    page: int
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


@strawberry.type
class SyncRunPage:
    pagination: PaginationInfo
    data: list[SyncRun]

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
    async def syncs(self, info: Info, project: str) -> list[Sync]:
        found = await domain.list_syncs(info.context.db, info.context.principal, project)
        return [Sync.from_domain(s) for s in found]

    @strawberry.field(description="One sync; NOT_FOUND when it does not exist or is not yours.")
    async def sync(self, info: Info, id: int) -> Sync:
        return Sync.from_domain(await domain.get_sync(info.context.db, info.context.principal, id))

    @strawberry.field(description="One run; NOT_FOUND when it does not exist or is not yours.")
    async def sync_run(self, info: Info, id: int) -> SyncRun:
        run = await domain.get_run(info.context.db, info.context.principal, id)
        return SyncRun.from_domain(run)

    @strawberry.field(description=f"A sync's runs by creation time (Census). {PAGE_HELP}")
    async def sync_runs(
        self,
        info: Info,
        sync_id: int,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        order: SortOrderEnum = SortOrder.DESC,
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
        project: str,
        status: SyncRunStatus | None = None,
        page: int = 1,
        per_page: int = DEFAULT_PER_PAGE,
        order: SortOrderEnum = SortOrder.DESC,
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
        project: str,
        name: str,
        device_id: str | None = None,
        direction: ExchangeDirection = domain.ExchangeDirection.BOTH,
        include_tables: list[str] | None = None,
        exclude_tables: list[str] | None = None,
        user: str | None = None,
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
        sync_id: int,
        full_sync: bool = False,
        sync_trigger_reason: SyncTriggerReasonInput | None = None,
        scheduled_execution_time: datetime | None = None,
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
        id: int,
        counters: SyncRunCounters | None = None,
        current_step: str | None = None,
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

    @strawberry.mutation(description="A WORKING run finished successfully, with final counters.")
    async def complete_sync_run(
        self, info: Info, id: int, counters: SyncRunCounters | None = None
    ) -> SyncRun:
        run = await domain.complete_sync_run(
            info.context.db,
            info.context.principal,
            id,
            counters.to_domain() if counters else None,
            events=info.context.services,
        )
        return SyncRun.from_domain(run)

    @strawberry.mutation(description="A QUEUED or WORKING run failed.")
    async def fail_sync_run(
        self,
        info: Info,
        id: int,
        error_code: str,
        error_message: str | None = None,
        error_detail: str | None = None,
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
    async def cancel_sync_run(self, info: Info, id: int) -> SyncRun:
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
        self, info: Info, project: str, sync_id: int | None = None
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
