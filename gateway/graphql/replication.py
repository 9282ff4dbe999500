"""Replication of whole documents per table, as offline-first databases (RxDB's GraphQL
replication) expect it: pull with a checkpoint, push with the assumed master state, a live
stream. The domain is ``gateway/sync/replication.py``; ``clients/rxdb/`` has the client side."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from gateway.graphql.arguments import ProjectCode
from gateway.graphql.context import Info
from gateway.graphql.limits import response_budget
from gateway.live.documents import stream_documents
from gateway.sync import replication
from gateway.sync.documents import PushRow
from gateway.sync.validation import DataLimits


@strawberry.type(
    description="Where a client is in one table's changes (RxDB's checkpoint). Keep it and "
    "send it back with the next pull."
)
class RecordCheckpoint:
    cursor: str = strawberry.field(description="Opaque: use it as the gateway returned it.")


@strawberry.input(description="A checkpoint the gateway returned, sent back to pull what follows.")
class RecordCheckpointInput:
    cursor: str = strawberry.field(description="The cursor of a RecordCheckpoint, as returned.")


@strawberry.type(
    description="Documents of one table with the checkpoint that follows them: a page of a pull, "
    "or a message of the live stream."
)
class RecordDocuments:
    documents: list[JSON] = strawberry.field(
        description="Each record as a whole document: every field it holds now (fields without "
        "a value are left out), `id` (the recordId) and `_deleted`."
    )
    checkpoint: RecordCheckpoint = strawberry.field(
        description="Pull from here next; after the last page, where to pull from later."
    )
    resync: bool = strawberry.field(
        description="Only on the live stream, as its first message: pull from your own "
        "checkpoint now (RxDB's 'RESYNC'); documents is then empty."
    )

    @classmethod
    def from_domain(cls, page: replication.DocumentPage) -> RecordDocuments:
        return cls(
            documents=cast(list[JSON], page.documents),
            checkpoint=RecordCheckpoint(cursor=page.checkpoint.encode()),
            resync=page.resync,
        )


@strawberry.input(
    description="One document a client changed: the state it last had from the gateway, and "
    "the state it wants (RxDB's push row)."
)
class RecordPushRow:
    assumed_master_state: JSON | None = strawberry.field(
        default=None,
        description="The document as the client last had it from the gateway; null when it "
        "thinks the gateway has none.",
    )
    new_document_state: JSON = strawberry.field(
        description="The whole document as it should be: `id` (32 lower-case hex digits), its "
        "fields, and `_deleted: true` to delete it."
    )


Project = ProjectCode
Table = Annotated[
    str, strawberry.argument(description="The table, by name: one replication per table.")
]
User = Annotated[
    str | None,
    strawberry.argument(description="Whose records (omitted: yours; others' need their grant)."),
]
Limit = Annotated[
    int,
    strawberry.argument(
        description="Documents per page, 1 to GATEWAY_MAX_READ_BATCH (1000): RxDB's batchSize."
    ),
]
Checkpoint = Annotated[
    RecordCheckpointInput | None,
    strawberry.argument(description="The checkpoint of the last page (none: from the start)."),
]
Rows = Annotated[
    list[RecordPushRow],
    strawberry.argument(description="The changed documents, at most GATEWAY_MAX_WRITE_BATCH."),
]
DeviceId = Annotated[
    str | None,
    strawberry.argument(
        description="The device writing, recorded with its actions (its history, runs, health)."
    ),
]


@strawberry.type
class ReplicationQuery:
    @strawberry.field(
        description="The documents of one table changed after a checkpoint (none: from the "
        "start), oldest change first, each once with its current state. Pull again from the "
        "returned checkpoint while a page is full (`limit` documents): a shorter page means "
        "there is nothing more for now."
    )
    async def pull_records(
        self,
        info: Info,
        project: Project,
        table: Table,
        limit: Limit,
        checkpoint: Checkpoint = None,
        user: User = None,
    ) -> RecordDocuments:
        context = info.context
        budget = response_budget()
        async with budget.turn if budget is not None else contextlib.nullcontext():
            page = await replication.pull_documents(
                context.db,
                context.principal,
                project,
                table,
                user=user,
                checkpoint=checkpoint.cursor if checkpoint is not None else None,
                limit=limit,
                max_batch=context.services.settings.max_read_batch,
                max_bytes=budget.left if budget is not None else None,
            )
            if budget is not None:
                budget.spend(page.data_size)
        return RecordDocuments.from_domain(page)


@strawberry.type
class ReplicationMutation:
    @strawberry.mutation(
        description="Write changed documents of one table, all or none. A row whose "
        "assumedMasterState is not the gateway's current document is not written: the answer "
        "lists the current document of each such row (RxDB's conflicts), and an empty list "
        "means every row was written. Writes are database actions like writeActions' (the "
        "fields that changed, validated, logged, live)."
    )
    async def push_records(
        self,
        info: Info,
        project: Project,
        table: Table,
        rows: Rows,
        user: User = None,
        device_id: DeviceId = None,
    ) -> list[JSON]:
        context = info.context
        settings = context.services.settings
        outcome = await replication.push_documents(
            context.db,
            context.principal,
            project,
            table,
            # As given: check_rows says what is wrong with a document that is not an object.
            [PushRow(r.assumed_master_state, r.new_document_state) for r in rows],
            user=user,
            device_id=device_id,
            max_batch=settings.max_write_batch,
            events=context.services,
            limits=DataLimits(settings.max_record_bytes, settings.max_json_depth),
        )
        return cast(list[JSON], outcome.conflicts)


@strawberry.type
class ReplicationSubscription:
    @strawberry.subscription(
        description="The documents of one table as they change, live: first a message with "
        "resync true (pull from your own checkpoint now), then the changed documents with the "
        "checkpoint after them. An error (an expired token, lost access) comes as the error of "
        "one message, with recordChanges null, and ends the subscription."
    )
    async def record_changes(
        self,
        info: Info,
        project: Project,
        table: Table,
        user: User = None,
    ) -> AsyncGenerator[RecordDocuments | None, None]:
        context = info.context
        settings = context.services.settings
        try:
            with context.subscription_slot():
                stream = stream_documents(
                    context.db,
                    context.services.hub,
                    context.principal,
                    project,
                    table,
                    user=user,
                    max_batch=settings.max_read_batch,
                    poll_seconds=settings.live_poll_seconds,
                    max_bytes=settings.max_response_bytes,
                )
                async with contextlib.aclosing(stream) as pages:
                    async for page in pages:
                        yield RecordDocuments.from_domain(page)
        except Exception as exc:
            # Never raised: an exception ending the generator reaches clients as a message
            # without data, and RxDB's client fails on one (it reads the field of every
            # message). Yielded, it becomes this message's error, with recordChanges null
            # (coded, or masked as every unexpected error is).
            yield cast(RecordDocuments, exc)
