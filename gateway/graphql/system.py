"""Connection diagnostics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry

from gateway.db.types import utcnow
from gateway.errors import BadUserInput
from gateway.graphql.context import Info
from gateway.graphql.scalars import Long
from gateway.live.guard import Guard

MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 60_000


@strawberry.type(description="One beat of the heartbeat subscription.")
class Heartbeat:
    seq: int = strawberry.field(description="The beat's number: 1, 2, 3, ...")
    time: datetime = strawberry.field(description="When the gateway sent it.")
    server_time: Long = strawberry.field(description="The same instant in epoch milliseconds.")
    user: str = strawberry.field(description="The user this connection is authenticated as.")


@strawberry.type
class SystemSubscription:
    @strawberry.subscription(
        description="A beat every `intervalMs`, ending after `count` beats when given: shows "
        "that a WebSocket connection and its authentication work."
    )
    async def heartbeat(
        self,
        info: Info,
        interval_ms: Annotated[
            int, strawberry.argument(description="Milliseconds between beats, 100 to 60,000.")
        ] = 1000,
        count: Annotated[
            int | None,
            strawberry.argument(
                description="Stop after this many beats (1 or more); omitted: never."
            ),
        ] = None,
    ) -> AsyncGenerator[Heartbeat, None]:
        context = info.context
        principal = context.principal
        if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
            raise BadUserInput(
                f"intervalMs must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}",
                field="intervalMs",
            )
        if count is not None and count < 1:
            raise BadUserInput("count must be at least 1", field="count")
        # Like every subscription: it counts against the connection's cap, and ends with
        # UNAUTHENTICATED when the token expires.
        guard = Guard(principal, context.services.settings.live_poll_seconds)
        with context.subscription_slot():
            loop = asyncio.get_running_loop()
            beat_at, seq = loop.time(), 0
            while count is None or seq < count:
                await guard.check()
                while (left := beat_at - loop.time()) > 0:
                    await guard.wait(asyncio.sleep(left))
                beat_at += interval_ms / 1000
                seq += 1
                now = utcnow()
                yield Heartbeat(
                    seq=seq,
                    time=now,
                    server_time=Long(int(now.timestamp() * 1000)),
                    user=principal.user_id,
                )
