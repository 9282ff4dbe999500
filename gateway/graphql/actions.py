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
from gateway.graphql.context import Info
from gateway.graphql.limits import response_budget
from gateway.graphql.scalars import Long
from gateway.live.stream import stream_actions
from gateway.sync import reader, writer
from gateway.sync.actions import ActionType as DomainActionType
from gateway.sync.actions import DeliveredAction, IncomingAction
from gateway.sync.validation import DataLimits

ActionType = strawberry.enum(DomainActionType, description="What an action does to its record.")


@strawberry.input(description="A database action as a device writes it (the seed's write).")
class ActionInput:
    table: str
    user: str
    action: ActionType
    record_id: str = strawberry.field(description="A UUID: 32 hex digits, or the dashed form.")
    json_data: str | None = strawberry.field(
        default=None, description="A JSON object with the record's fields; none for DELETE."
    )
    sample_time: Long | None = strawberry.field(
        default=None,
        description="Ignored: the gateway computes it from utcTime/localTime, as the seed does.",
    )
    time: Long
    order: int
    source: str | None = None
    author: str | None = None
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
    table: str
    cursor: str


@strawberry.input
class TimeRangeInput:
    table: str
    start_time: Long = strawberry.field(description="Inclusive, UNIX time in ms.")
    end_time: Long = strawberry.field(description="Exclusive, UNIX time in ms.")


@strawberry.input
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
        default=False, description="Also return the actions that came from this device."
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


@strawberry.type(description="Read progress of one table.")
class Progress:
    table: str
    user: str
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


@strawberry.type(description="A database action as a reader receives it (the seed's read).")
class DatabaseAction:
    table: str
    user: str
    action: ActionType
    record_id: str
    json_data: str | None = strawberry.field(description="The record's fields as a JSON string.")
    sample_time: Long | None
    time: Long
    order: int
    source: str = strawberry.field(
        description="'remote' when the action came from the reading device, else 'local'."
    )
    author: str | None
    device_id: str | None = strawberry.field(description="The device that wrote it.")
    position: Long = strawberry.field(
        description="Its place in the log: the record's version after it (`baseVersion`)."
    )

    @strawberry.field(description="jsonData, parsed.")
    def data(self) -> JSON | None:
        return json.loads(self.json_data) if self.json_data is not None else None

    @classmethod
    def from_domain(cls, a: DeliveredAction) -> DatabaseAction:
        return cls(
            table=a.table,
            user=a.user,
            action=a.action,
            record_id=a.record_id,
            json_data=a.json_data,
            sample_time=Long(a.sample_time) if a.sample_time is not None else None,
            time=Long(a.time),
            order=a.order,
            source=a.source,
            author=a.author,
            device_id=a.device_id,
            position=Long(a.position),
        )


@strawberry.type
class ActionBatch:
    actions: list[DatabaseAction]
    progress: list[Progress] = strawberry.field(
        description="Per selected table, where to continue from."
    )
    has_more: bool = strawberry.field(
        description="More matching actions are ready now (the batch was full)."
    )

    @classmethod
    def from_domain(cls, batch: reader.ReadBatch) -> ActionBatch:
        return cls(
            actions=[DatabaseAction.from_domain(a) for a in batch.actions],
            progress=[Progress.from_domain(p) for p in batch.progress],
            has_more=batch.has_more,
        )


@strawberry.type
class ReadStats:
    progress: list[Progress] = strawberry.field(description="The progress given, back.")
    count: Long = strawberry.field(description="Actions after the progress, before merging.")
    latest_time: Long | None = strawberry.field(description="The latest of their times.")


@strawberry.type(description="Write progress of one table (the seed's get-progress).")
class WriteProgress:
    table: str
    user: str
    time: Long | None
    order: int | None

    @classmethod
    def from_domain(cls, mark: writer.WriteMark) -> WriteProgress:
        return cls(
            table=mark.table,
            user=mark.user,
            time=Long(mark.time) if mark.time is not None else None,
            order=mark.order,
        )


@strawberry.type
class WriteResult:
    accepted: list[int] = strawberry.field(description="Indexes of the actions written.")
    duplicates: list[int] = strawberry.field(
        description="Indexes of actions already in the log (a retried batch), not written again."
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
        description="New database actions after the given progress (the seed's read), merged "
        "within the batch. Repeat with the returned progress while hasMore is true. A table "
        "without progress starts from its current records (see snapshot)."
    )
    async def actions(
        self,
        info: Info,
        project: str,
        user: str | None = None,
        device_id: str | None = None,
        progress: list[ProgressInput] | None = None,
        filter: ActionFilter | None = None,
        max_count: int = 0,
        max_time: Long | None = None,
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
        project: str,
        user: str | None = None,
        device_id: str | None = None,
        progress: list[ProgressInput] | None = None,
        filter: ActionFilter | None = None,
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
        project: str,
        user: str | None = None,
        device_id: str | None = None,
        include_tables: list[str] | None = None,
        exclude_tables: list[str] | None = None,
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
        description="Write database actions (the seed's write): validated, applied whole or "
        "not at all, and idempotent (a retried batch reports its actions as duplicates)."
    )
    async def write_actions(
        self,
        info: Info,
        project: str,
        actions: list[ActionInput],
        user: str | None = None,
        device_id: str | None = None,
        include_tables: list[str] | None = None,
        exclude_tables: list[str] | None = None,
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
        description="New database actions, live (the seed's watch): first the backlog after "
        "the given progress in batches of at most maxCount (a table without progress from its "
        "current records, see snapshot), then each new batch as it commits. Every message "
        "carries the progress to resume from after a disconnect."
    )
    async def database_actions(
        self,
        info: Info,
        project: str,
        user: str | None = None,
        device_id: str | None = None,
        progress: list[ProgressInput] | None = None,
        filter: ActionFilter | None = None,
        max_count: int = 0,
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
