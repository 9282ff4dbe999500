"""Live subscriptions over WebSockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import strawberry

from gateway.graphql.actions import ActionBatch, ActionFilter, ProgressInput, read_request
from gateway.graphql.context import Info
from gateway.graphql.devices import Device
from gateway.live.status import device_status_changes
from gateway.live.stream import stream_actions


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        description="New database actions, live (the seed's watch): first the backlog after "
        "the given progress in batches of at most maxCount, then each new batch as it commits. "
        "Every message carries the progress to resume from after a disconnect."
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
    ) -> AsyncGenerator[ActionBatch, None]:
        context = info.context
        settings = context.services.settings
        request = read_request(project, user, device_id, progress, filter, max_count)
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

    @strawberry.subscription(
        description="Device health for dashboards: first every device you may see, then each "
        "device whose status changes (computed once per change for all watchers). Ends with "
        "FORBIDDEN when your access to a device shown is withdrawn."
    )
    async def device_status_changed(self, info: Info, project: str) -> AsyncGenerator[Device, None]:
        context = info.context
        with context.subscription_slot():
            async for device in device_status_changes(
                context.services.status_feeds,
                context.db,
                context.services.hub,
                context.principal,
                project,
                context.services.settings.live_poll_seconds,
            ):
                yield Device.from_domain(device)
