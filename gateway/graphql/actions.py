"""Database actions: write, read, read stats, write progress (SenSeeAct's /sync, as GraphQL)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext

from gateway.errors import BadUserInput
from gateway.graphql.arguments import ProjectCode, WhoseData
from gateway.graphql.context import Info
from gateway.graphql.enums import described_enum
from gateway.graphql.limits import response_budget
from gateway.graphql.scalars import Long
from gateway.live.stream import stream_actions
from gateway.sync import reader, writer
from gateway.sync.actions import ActionType as DomainActionType
from gateway.sync.actions import DeliveredAction, IncomingAction
from gateway.sync.validation import DataLimits

ActionType = described_enum(
    DomainActionType,
    description="What an action does to its record.",
    values={
        "INSERT": "Creates the record with jsonData's fields.",
        "UPDATE": "Changes the fields jsonData gives; the others keep their values.",
        "DELETE": "Deletes the record (no jsonData).",
    },
)


@strawberry.input(description="One change of a record, as a device writes it.")
class ActionInput:
    table: str = strawberry.field(description="The table's name, as declared with defineTable.")
    user: str = strawberry.field(
        description="Whose data the record is: the batch's user (writeActions' user argument, "
        "omitted: yours)."
    )
    action: ActionType = strawberry.field(
        description="Whether the action inserts, updates or deletes the record."
    )
    record_id: str = strawberry.field(description="A UUID: 32 hex digits, or the dashed form.")
    json_data: str | None = strawberry.field(
        default=None, description="A JSON object with the record's fields; none for DELETE."
    )
    sample_time: Long | None = strawberry.field(
        default=None,
        description="Ignored: the gateway takes it from the record's utcTime or localTime.",
    )
    time: Long = strawberry.field(
        description="When the device made the change, UNIX time in ms; with order, it "
        "identifies the action (a retry with the same time and order is a "
        "duplicate)."
    )
    order: int = strawberry.field(
        description="Orders actions of the same time: 0, 1, 2, ... within one millisecond."
    )
    source: str | None = strawberry.field(
        default=None,
        description="Free text for the writer's own use (e.g. the app that made the change); "
        "readers get 'local' or 'remote' instead.",
    )
    author: str | None = strawberry.field(
        default=None,
        description="Who made the change, as the app knows them (free text, kept with the action).",
    )
    base_version: Long | None = strawberry.field(
        default=None,
        description="The record's `position` this change was based on. With it, any change "
        "of the record since is a conflict; without it, changes the device has not received.",
    )


def _incoming_action(_: type, value: Mapping[str, Any], context: InputContext) -> IncomingAction:
    """writeActions' input path: graphql-core has already coerced and checked every field of
    every action, so each becomes the domain's action at once. Strawberry's own conversion
    (an ActionInput per action, field by field) cost about 30 ms per 1,000 actions."""
    return IncomingAction(
        table=value["table"],
        user=value["user"],
        action=value["action"],
        record_id=value["recordId"],
        json_data=value.get("jsonData"),
        time=value["time"],
        order=value["order"],
        sample_time=value.get("sampleTime"),
        source=value.get("source"),
        author=value.get("author"),
        base_version=value.get("baseVersion"),
    )


# An ActionInput argument arrives as an IncomingAction (see _incoming_action).
ActionInput.__strawberry_definition__.from_input = _incoming_action


@strawberry.input(description="Where a reader is in one table: a cursor the gateway returned.")
class ProgressInput:
    table: str = strawberry.field(description="The table this progress is of.")
    cursor: str = strawberry.field(
        description="The cursor a read returned for the table, as it was."
    )


@strawberry.input(
    description="A time range of one table's sample times (its utcTime or localTime)."
)
class TimeRangeInput:
    table: str = strawberry.field(description="The table the range applies to.")
    start_time: Long = strawberry.field(description="Inclusive, UNIX time in ms.")
    end_time: Long = strawberry.field(description="Exclusive, UNIX time in ms.")


@strawberry.input(description="Which actions a read returns.")
class ActionFilter:
    include_tables: list[str] | None = strawberry.field(
        default=None, description="Only these tables (none or empty: all)."
    )
    exclude_tables: list[str] | None = strawberry.field(
        default=None, description="Never these tables, even when included."
    )
    time_range_restrictions: list[TimeRangeInput] | None = strawberry.field(
        default=None,
        description="Per table, only actions whose sampleTime is in the range; ignored for "
        "tables without utcTime/localTime.",
    )
    include_own: bool = strawberry.field(
        default=False,
        description="Also return your own actions: those of this device (deviceId), or, "
        "without a deviceId, those you wrote without one.",
    )

    def to_domain(self) -> reader.ReadFilter:
        return reader.ReadFilter(
            include_tables=self.include_tables,
            exclude_tables=self.exclude_tables,
            time_ranges=[
                reader.TimeRange(r.table, r.start_time, r.end_time)
                for r in self.time_range_restrictions or ()
            ],
            include_own=self.include_own,
        )


# What every read (actions, readStats, databaseActions) takes, described once.
ReadProgressArg = Annotated[
    list[ProgressInput] | None,
    strawberry.argument(
        description="Where the last read ended, per table: the progress it returned. A "
        "table without progress starts from the beginning (see snapshot)."
    ),
]
ReadFilterArg = Annotated[
    ActionFilter | None,
    strawberry.argument(
        description="Which tables and sample times to read (omitted: every table, every "
        "action not from this device)."
    ),
]


@strawberry.type(description="Read progress of one table.")
class Progress:
    table: str = strawberry.field(description="The table this progress is of.")
    user: str = strawberry.field(description="Whose data was read.")
    cursor: str = strawberry.field(description="Opaque: give it back to continue after it.")
    time: Long | None = strawberry.field(description="time of the last action read, if any.")
    order: int | None = strawberry.field(description="order of the last action read, if any.")

    @classmethod
    def from_domain(cls, progress: reader.TableProgress) -> Progress:
        cursor = progress.cursor
        return cls(
            table=progress.table,
            user=progress.user,
            cursor=cursor.encode(),
            time=Long(cursor.time) if cursor.time is not None else None,
            order=cursor.order,
        )


@strawberry.type(description="One change of a record, as a reader receives it.")
class DatabaseAction:
    table: str = strawberry.field(description="The table of the changed record.")
    user: str = strawberry.field(description="Whose data the record is.")
    action: ActionType = strawberry.field(
        description="What the action does to the record; several changes of one record in one "
        "batch arrive merged (an INSERT then UPDATEs as one INSERT with the final "
        "data)."
    )
    record_id: str = strawberry.field(description="The record's id, 32 lower-case hex digits.")
    json_data: str | None = strawberry.field(description="The record's fields as a JSON string.")
    sample_time: Long | None = strawberry.field(
        description="When the data was measured, UNIX time in ms, from the record's utcTime or "
        "localTime; null for tables without them."
    )
    time: Long = strawberry.field(
        description="When the writing device made the change, UNIX time in ms."
    )
    order: int = strawberry.field(
        description="Orders actions of the same time, as the writer gave it."
    )
    source: str = strawberry.field(
        description="'remote' when the action came from the reading device, else 'local'."
    )
    author: str | None = strawberry.field(description="Who made the change, as the writer gave it.")
    device_id: str | None = strawberry.field(description="The device that wrote it.")
    position: Long = strawberry.field(
        description="Its position: a number that grows with every change the gateway stores. "
        "It is the record's version after the change (give it back as `baseVersion`)."
    )

    @strawberry.field(description="jsonData, parsed.")
    def data(self) -> JSON | None:
        return json.loads(self.json_data) if self.json_data is not None else None

    @staticmethod
    def served(actions: list[DeliveredAction]) -> list[DatabaseAction]:
        """The domain's actions served as they are: a ``DeliveredAction`` has exactly these
        fields' attributes (tests/unit/test_served_types.py holds them equal), and a
        page of 1,000 then builds no second object per action."""
        return cast(list[DatabaseAction], actions)


@strawberry.type(description="A batch of database actions, with the progress to continue from.")
class ActionBatch:
    actions: list[DatabaseAction] = strawberry.field(
        description="The actions, in the order they were stored."
    )
    progress: list[Progress] = strawberry.field(
        description="Per selected table, where to continue from."
    )
    has_more: bool = strawberry.field(
        description="More matching actions are ready now (the batch was full)."
    )

    @classmethod
    def from_domain(cls, batch: reader.ReadBatch) -> ActionBatch:
        return cls(
            actions=DatabaseAction.served(batch.actions),
            progress=[Progress.from_domain(p) for p in batch.progress],
            has_more=batch.has_more,
        )


@strawberry.type(
    description="What a read from the given progress would go through, without reading it."
)
class ReadStats:
    progress: list[Progress] = strawberry.field(description="The progress given, back.")
    count: Long = strawberry.field(description="Actions after the progress, before merging.")
    latest_time: Long | None = strawberry.field(description="The latest of their times.")


@strawberry.type(
    description="What a device already sent of one table: its last action's time and order."
)
class WriteProgress:
    table: str = strawberry.field(description="The table.")
    user: str = strawberry.field(description="Whose data.")
    time: Long | None = strawberry.field(
        description="The time of the last action written, UNIX time in ms; null when none was."
    )
    order: int | None = strawberry.field(
        description="The order of that action; null when none was."
    )

    @classmethod
    def from_domain(cls, mark: writer.WriteMark) -> WriteProgress:
        return cls(
            table=mark.table,
            user=mark.user,
            time=Long(mark.time) if mark.time is not None else None,
            order=mark.order,
        )


@strawberry.type(description="What became of a batch of written actions.")
class WriteResult:
    accepted: list[int] = strawberry.field(description="Indexes of the actions written.")
    duplicates: list[int] = strawberry.field(
        description="Indexes of actions the gateway already had (a retried batch): not written "
        "again."
    )
    progress: list[WriteProgress] = strawberry.field(
        description="Write progress of the tables in the batch."
    )


def read_request(
    project: str,
    user: str | None,
    device_id: str | None,
    progress: list[ProgressInput] | None,
    filter: ActionFilter | None,
    max_count: int = 0,
    max_time: int | None = None,
    snapshot: bool = True,
) -> reader.ReadRequest:
    given = {}
    for p in progress or ():
        if p.table in given:
            raise BadUserInput(f"progress names table {p.table!r} twice", field="progress")
        given[p.table] = p.cursor
    return reader.ReadRequest(
        project=project,
        user=user,
        device_id=device_id,
        progress=given,
        filter=(filter or ActionFilter()).to_domain(),
        max_count=max_count,
        max_time=max_time,
        snapshot=snapshot,
    )


# A table read without progress: its current records, or its whole history.
Snapshot = Annotated[
    bool,
    strawberry.argument(
        description="For tables without progress: first each current record once, as an "
        "INSERT with its data (deleted records left out), then the changes after it. False: "
        "every action ever written, from the first."
    ),
]


@strawberry.type
class ActionQuery:
    @strawberry.field(
        description="New database actions after the given progress, merged "
        "within the batch. Repeat with the returned progress while hasMore is true. A table "
        "without progress starts from its current records (see snapshot)."
    )
    async def actions(
        self,
        info: Info,
        project: ProjectCode,
        user: WhoseData = None,
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="The reading device's deviceId: actions it wrote itself are left "
                "out (see filter.includeOwn), and the read counts as its get in the "
                "sync history."
            ),
        ] = None,
        progress: ReadProgressArg = None,
        filter: ReadFilterArg = None,
        max_count: Annotated[
            int,
            strawberry.argument(
                description="The most actions to return; 0: as many as the gateway returns at "
                "once (GATEWAY_MAX_READ_BATCH, 1,000 by default)."
            ),
        ] = 0,
        max_time: Annotated[
            Long | None,
            strawberry.argument(
                description="Only actions stored up to this UNIX time in ms; the progress stops "
                "there."
            ),
        ] = None,
        snapshot: Snapshot = True,
    ) -> ActionBatch:
        request = read_request(
            project, user, device_id, progress, filter, max_count, max_time, snapshot
        )
        budget = response_budget()
        async with budget.turn if budget is not None else contextlib.nullcontext():
            batch = await reader.read_actions(
                info.context.db,
                info.context.principal,
                request,
                max_batch=info.context.services.settings.max_read_batch,
                events=info.context.services,
                max_bytes=budget.left if budget is not None else None,
            )
            if budget is not None:
                budget.spend(sum(len(a.json_data or "") for a in batch.actions))
        return ActionBatch.from_domain(batch)

    @strawberry.field(description="How many new actions a read would go through (get-read-stats).")
    async def read_stats(
        self,
        info: Info,
        project: ProjectCode,
        user: WhoseData = None,
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="The reading device's deviceId: actions it wrote itself are not "
                "counted (see filter.includeOwn)."
            ),
        ] = None,
        progress: ReadProgressArg = None,
        filter: ReadFilterArg = None,
    ) -> ReadStats:
        request = read_request(project, user, device_id, progress, filter)
        stats = await reader.read_stats(info.context.db, info.context.principal, request)
        return ReadStats(
            progress=[Progress.from_domain(p) for p in stats.progress],
            count=stats.count,
            latest_time=Long(stats.latest_time) if stats.latest_time is not None else None,
        )

    @strawberry.field(
        description="Per table, the time and order of the last action written for the user "
        "(by that device, when deviceId is given): what a device has already sent."
    )
    async def write_progress(
        self,
        info: Info,
        project: ProjectCode,
        user: WhoseData = None,
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="Only what this device wrote (omitted: what any device wrote)."
            ),
        ] = None,
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
    ) -> list[WriteProgress]:
        marks = await writer.write_progress(
            info.context.db,
            info.context.principal,
            project,
            user,
            device_id,
            include_tables,
            exclude_tables,
        )
        return [WriteProgress.from_domain(m) for m in marks]


@strawberry.type
class ActionMutation:
    @strawberry.mutation(
        description="Write database actions: validated, applied whole or "
        "not at all, and idempotent (a retried batch reports its actions as duplicates)."
    )
    async def write_actions(
        self,
        info: Info,
        project: ProjectCode,
        actions: Annotated[
            list[ActionInput],
            strawberry.argument(
                description="The actions, applied in the order given (at most "
                "GATEWAY_MAX_WRITE_BATCH, 10,000 by default)."
            ),
        ],
        user: Annotated[
            str | None,
            strawberry.argument(
                description="Whose data the batch writes: a user id (omitted: yours); every "
                "action's user must be this one."
            ),
        ] = None,
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="The writing device's deviceId: its readers do not get these "
                "actions back, and the write counts as its put in the sync history."
            ),
        ] = None,
        include_tables: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only these tables may be written (omitted or empty: every table); "
                "an action of another is TABLE_NOT_ALLOWED."
            ),
        ] = None,
        exclude_tables: Annotated[
            list[str] | None,
            strawberry.argument(description="These tables may not be written (TABLE_NOT_ALLOWED)."),
        ] = None,
    ) -> WriteResult:
        settings = info.context.services.settings
        outcome = await writer.write_actions(
            info.context.db,
            info.context.principal,
            writer.WriteRequest(
                project=project,
                actions=cast("list[IncomingAction]", actions),
                user=user,
                device_id=device_id,
                include_tables=include_tables,
                exclude_tables=exclude_tables,
            ),
            max_batch=settings.max_write_batch,
            events=info.context.services,
            limits=DataLimits(settings.max_record_bytes, settings.max_json_depth),
        )
        return WriteResult(
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            progress=[WriteProgress.from_domain(m) for m in outcome.progress],
        )


@strawberry.type
class ActionSubscription:
    @strawberry.subscription(
        description="New database actions, live: first the backlog after "
        "the given progress in batches of at most maxCount (a table without progress from its "
        "current records, see snapshot), then each new batch as it is stored. Every message "
        "carries the progress to resume from after a disconnect."
    )
    async def database_actions(
        self,
        info: Info,
        project: ProjectCode,
        user: WhoseData = None,
        device_id: Annotated[
            str | None,
            strawberry.argument(
                description="The reading device's deviceId: actions it wrote itself are left "
                "out (see filter.includeOwn), and what it receives counts towards "
                "its gets."
            ),
        ] = None,
        progress: ReadProgressArg = None,
        filter: ReadFilterArg = None,
        max_count: Annotated[
            int,
            strawberry.argument(
                description="The most actions per message; 0: as many as the gateway sends at "
                "once (GATEWAY_MAX_READ_BATCH)."
            ),
        ] = 0,
        snapshot: Snapshot = True,
    ) -> AsyncGenerator[ActionBatch, None]:
        context = info.context
        settings = context.services.settings
        request = read_request(
            project, user, device_id, progress, filter, max_count, snapshot=snapshot
        )
        stream = stream_actions(
            context.db,
            context.services.hub,
            context.principal,
            request,
            max_batch=settings.max_read_batch,
            poll_seconds=settings.live_poll_seconds,
            history_seconds=settings.live_history_seconds,
            run_timeout_seconds=settings.sync_run_timeout_seconds,
            events=context.services,
            max_bytes=settings.max_response_bytes,
            metrics=context.services.metrics,
            replica_id=context.services.replica_id,
        )
        # Closed with this generator, at once: the stream's end completes the device's run.
        with context.subscription_slot():
            async with contextlib.aclosing(stream) as batches:
                async for batch in batches:
                    message = ActionBatch.from_domain(batch)
                    del batch  # held while the stream waits otherwise
                    yield message
                    # Sent. graphql-core keeps the last message while it waits for the next:
                    # it keeps an empty one.
                    message.actions = []
                    del message
