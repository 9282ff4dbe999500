"""RegardingWork's sync status report: ``syncStatus`` and its live form ``syncStatusChanged``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from gateway.graphql.arguments import ProjectCode
from gateway.graphql.conflicts import ConflictKind
from gateway.graphql.context import Info
from gateway.graphql.devices import Device
from gateway.graphql.enums import described_enum
from gateway.graphql.scalars import Long
from gateway.live.status import sync_status_changes
from gateway.sync import status as domain

OverallSyncStatus = described_enum(
    domain.OverallSyncStatus,
    name="OverallSyncStatus",
    description="The overall health of one user's synchronization: the first of CONFLICTS, "
    "OFFLINE and DELAYED that holds, else HEALTHY.",
    values={
        "HEALTHY": "Every device seen within lastHours is up to date.",
        "DELAYED": "Changes wait to be sent or received by a device (PENDING or STALE).",
        "CONFLICTS": "Open conflicts need review.",
        "OFFLINE": "No device was seen within lastHours (or the user has none).",
    },
)


@strawberry.type(description="Time since the latest sync.")
class SyncLag:
    seconds: int = strawberry.field(description="Seconds since the latest sync.")
    text: str = strawberry.field(description='Readable: "just now", "2 minutes", "3 hours".')


@strawberry.type(description="The user's actions in one table.")
class TableActivity:
    table: str = strawberry.field(description="The table.")
    actions: Long = strawberry.field(description="How many actions of the user's the table has.")
    last_change: datetime = strawberry.field(description="When its latest action was stored.")


@strawberry.type(description="What the gateway's log holds of the user's data.")
class DataSummary:
    total_actions: Long = strawberry.field(description="Actions applied (conflict losers aside).")
    unsynced_actions: Long = strawberry.field(
        description="Changes the devices report as waiting to be sent (their pendingUp)."
    )
    last_action: datetime | None = strawberry.field(
        description="When the latest action was stored."
    )
    tables: list[TableActivity] = strawberry.field(description="The last change per table.")
    conflicts_detected: int = strawberry.field(description="Open conflicts.")


@strawberry.type(description="An open conflict, as the sync status report lists it.")
class SyncStatusConflict:
    id: int = strawberry.field(description="The id resolveConflict takes.")
    type: ConflictKind = strawberry.field(description="What kind of conflict it is.")
    description: str = strawberry.field(description="What happened, in a sentence for people.")
    affected_records: list[str] = strawberry.field(
        description="Their recordIds: the record, or for SESSION_OVERLAP the two records, "
        "the earlier first."
    )
    resolution: str = strawberry.field(
        description="KEPT_LATEST: the later change was applied and the record lives on with "
        "it (confirming is enough). MANUAL_REVIEW_REQUIRED: a deletion won over an edit, "
        "which went with the record, or two devices recorded overlapping ranges "
        "(SESSION_OVERLAP: both are kept; delete the duplicate)."
    )
    devices: list[str] = strawberry.field(description="The writers' deviceIds, winner first.")
    table: str = strawberry.field(description="The table of the records.")
    detected_at: datetime = strawberry.field(description="When the gateway detected it.")

    @classmethod
    def from_domain(cls, c: domain.StatusConflict) -> SyncStatusConflict:
        return cls(
            id=c.id,
            type=c.type,
            description=c.description,
            affected_records=c.affected_records,
            resolution=c.resolution,
            devices=c.devices,
            table=c.table,
            detected_at=c.detected_at,
        )


@strawberry.type(description="What to do about the open conflicts.")
class ConflictResolutionSummary:
    auto_resolvable: bool = strawberry.field(
        description="No open conflict is MANUAL_REVIEW_REQUIRED: confirming them is enough."
    )
    recommended_action: str = strawberry.field(description="What to do, in a sentence for people.")
    support_contact: str | None = strawberry.field(
        description="Whom to ask for help, as the operators set it "
        "(GATEWAY_SUPPORT_CONTACT); null when they did not."
    )


@strawberry.type(
    description="The sync status of one user's data: health, devices, pending changes, "
    "conflicts and what to do."
)
class SyncStatusReport:
    project: str = strawberry.field(description="The project's code.")
    user: str = strawberry.field(description="Whose data the report is of.")
    sync_status: OverallSyncStatus = strawberry.field(
        description="The overall health, in one word."
    )
    last_sync: datetime | None = strawberry.field(
        description="The latest put or get of any of the user's devices."
    )
    sync_lag: SyncLag | None = strawberry.field(description="Null when no device ever synced.")
    total_devices: int = strawberry.field(description="The user's devices in the project.")
    active_devices: int = strawberry.field(description="Devices seen within lastHours.")
    pending_syncs: Long = strawberry.field(
        description="Changes waiting, summed over the devices: pendingUp plus pendingDown."
    )
    devices: list[Device] | None = strawberry.field(description="Null unless includeDevices.")
    data_summary: DataSummary = strawberry.field(
        description="What the gateway holds of the user's data."
    )
    recommendations: list[str] = strawberry.field(
        description="What to do next, in sentences for people (empty when all is well)."
    )
    conflicts: list[SyncStatusConflict] | None = strawberry.field(
        description="With checkConflicts: the newest open conflicts (at most 100; conflicts "
        "pages through all). Null otherwise."
    )
    conflict_resolution: ConflictResolutionSummary | None = strawberry.field(
        description="With checkConflicts; null otherwise."
    )

    @classmethod
    def from_domain(cls, r: domain.SyncStatusReport) -> SyncStatusReport:
        summary = r.data_summary
        resolution = r.conflict_resolution
        return cls(
            project=r.project,
            user=r.user,
            sync_status=r.sync_status,
            last_sync=r.last_sync,
            sync_lag=SyncLag(seconds=r.sync_lag.seconds, text=r.sync_lag.text)
            if r.sync_lag
            else None,
            total_devices=r.total_devices,
            active_devices=r.active_devices,
            pending_syncs=r.pending_syncs,
            devices=None if r.devices is None else [Device.from_domain(d) for d in r.devices],
            data_summary=DataSummary(
                total_actions=summary.total_actions,
                unsynced_actions=summary.unsynced_actions,
                last_action=summary.last_action,
                tables=[
                    TableActivity(table=t.table, actions=t.actions, last_change=t.last_change)
                    for t in summary.tables
                ],
                conflicts_detected=summary.conflicts_detected,
            ),
            recommendations=r.recommendations,
            conflicts=None
            if r.conflicts is None
            else [SyncStatusConflict.from_domain(c) for c in r.conflicts],
            conflict_resolution=None
            if resolution is None
            else ConflictResolutionSummary(
                auto_resolvable=resolution.auto_resolvable,
                recommended_action=resolution.recommended_action,
                support_contact=resolution.support_contact,
            ),
        )


_REPORT = (
    "of one user's data (omitted: yours; patients see only their own, professionals those of "
    "users who granted them access, admins anyone's). includeDevices lists the devices; "
    "checkConflicts lists the open conflicts and what to do about them; lastHours (positive) "
    "is how recent a device must have been seen to count as active."
)


@strawberry.type
class SyncStatusQuery:
    @strawberry.field(description=f"The sync status report {_REPORT}")
    async def sync_status(
        self,
        info: Info,
        project: Annotated[
            str | None,
            strawberry.argument(
                description="The project's code (omitted: the one project you are a member "
                "of; BAD_USER_INPUT when you are a member of none or several)."
            ),
        ] = None,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data: a user id (omitted: yours). Patients see only their "
                "own, professionals also that of users who granted them access, "
                "admins anyone's."
            ),
        ] = None,
        include_devices: Annotated[
            bool, strawberry.argument(description="List the devices (devices is null otherwise).")
        ] = True,
        check_conflicts: Annotated[
            bool,
            strawberry.argument(
                description="List the open conflicts and what to do about them (conflicts and "
                "conflictResolution are null otherwise)."
            ),
        ] = False,
        last_hours: Annotated[
            int,
            strawberry.argument(
                description="How recently (in hours, 1 or more) a device must have been seen to "
                "count as active."
            ),
        ] = 24,
    ) -> SyncStatusReport:
        services = info.context.services
        report = await domain.sync_status(
            info.context.db,
            info.context.principal,
            project,
            user,
            domain.ReportOptions(include_devices, check_conflicts, last_hours),
            rules=services.status_feeds.rules,
            support_contact=services.settings.support_contact,
        )
        return SyncStatusReport.from_domain(report)


@strawberry.type
class SyncStatusSubscription:
    @strawberry.subscription(
        description=f"The sync status report, first as it is, then each time it changes "
        f"(not for the lag alone), computed once per change for all its watchers, {_REPORT}"
    )
    async def sync_status_changed(
        self,
        info: Info,
        project: ProjectCode,
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data: a user id (omitted: yours). Patients see only their "
                "own, professionals also that of users who granted them access, "
                "admins anyone's."
            ),
        ] = None,
        include_devices: Annotated[
            bool, strawberry.argument(description="List the devices (devices is null otherwise).")
        ] = True,
        check_conflicts: Annotated[
            bool,
            strawberry.argument(
                description="List the open conflicts and what to do about them (conflicts and "
                "conflictResolution are null otherwise)."
            ),
        ] = False,
        last_hours: Annotated[
            int,
            strawberry.argument(
                description="How recently (in hours, 1 or more) a device must have been seen to "
                "count as active."
            ),
        ] = 24,
    ) -> AsyncGenerator[SyncStatusReport, None]:
        context = info.context
        services = context.services
        options = domain.ReportOptions(include_devices, check_conflicts, last_hours)
        with context.subscription_slot():
            async for report in sync_status_changes(
                services.status_feeds,
                context.db,
                services.hub,
                context.principal,
                project,
                user,
                options,
                services.settings.support_contact,
                services.settings.live_poll_seconds,
            ):
                yield SyncStatusReport.from_domain(report)
