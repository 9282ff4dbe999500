"""Live subscriptions stay within what their caller may see, for as long as they run.

Access is decided when a subscription starts, and decided again while it streams: every
subscription ends with ``UNAUTHENTICATED`` once its token expires, and with ``FORBIDDEN`` once
its caller may no longer see what it streams (a grant revoked, a membership removed). A change
of access in a project wakes that project's subscriptions at once on the replica where it
happened (and, through the bus, on the others). Dashboards also re-check at least every
``GATEWAY_LIVE_POLL_SECONDS``; action streams are woken by their project's ``LogWatch`` when
access changed since its previous check (``watch.py``). Either way a lost wake-up only delays
the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from gateway.auth.principal import Principal
from gateway.errors import Unauthenticated
from gateway.live.hub import Hub

_T = TypeVar("_T")

# Looks again at what the caller may see; raises FORBIDDEN (or NOT_FOUND) when that is gone.
Recheck = Callable[[], Awaitable[None]]


def check_token(principal: Principal) -> None:
    if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
        raise Unauthenticated("token expired: reconnect with a new token")


def token_seconds(principal: Principal) -> float | None:
    """Seconds until the token expires (None: never)."""
    if principal.expires_at is None:
        return None
    return max(0.0, (principal.expires_at - datetime.now(UTC)).total_seconds())


def jittered(seconds: float) -> float:
    """So that subscriptions opened together do not all wake at once."""
    return seconds * random.uniform(0.8, 1.2)


def narrowed(before: set[str] | None, after: set[str] | None) -> bool:
    """Whether ``after`` (whose data one may see; None: everyone's) leaves out someone
    ``before`` included."""
    if after is None:
        return False
    return before is None or bool(before - after)


class Guard:
    """One subscription's guard. ``recheck`` None: the subscription's own reads check access
    (``databaseActions`` reads through the access rule every time it wakes)."""

    def __init__(
        self, principal: Principal, poll_seconds: float, recheck: Recheck | None = None
    ) -> None:
        self._principal = principal
        self._poll = poll_seconds
        self._recheck = recheck
        self._changed: asyncio.Event | None = None  # access changed in the watched project
        self._next_check = time.monotonic() + jittered(poll_seconds)

    @contextmanager
    def watching(self, hub: Hub, project_id: int) -> Iterator[Guard]:
        """Woken by changes of access in the project while the block runs."""
        with hub.listen_access(project_id) as waiter:
            self._changed = waiter.event
            yield self

    async def check(self) -> None:
        """Raise once the token expired, or (when access changed, or a re-check is due) once
        the caller may no longer see what the subscription streams."""
        check_token(self._principal)
        now = time.monotonic()
        changed = self._changed is not None and self._changed.is_set()
        if changed or now >= self._next_check:
            if self._changed is not None:
                self._changed.clear()
            self._next_check = now + jittered(self._poll)
            if self._recheck is not None:
                await self._recheck()

    async def wait(self, ready: Awaitable[_T], within: float | None = None) -> _T | None:
        """``ready``'s result; None when ``within`` seconds passed first, or access changed or
        a re-check was due (the caller looks again). Checked before it returns."""
        task = asyncio.ensure_future(ready)
        waiting = {task}
        if self._changed is not None:
            waiting.add(asyncio.ensure_future(self._changed.wait()))
        limits = [
            within,
            max(0.0, self._next_check - time.monotonic()),
            token_seconds(self._principal),
        ]
        try:
            await asyncio.wait(
                waiting,
                timeout=min(t for t in limits if t is not None),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for pending in waiting:
                if not pending.done():
                    pending.cancel()
                    await asyncio.wait({pending})  # settled before anyone waits on it again
        await self.check()
        return None if task.cancelled() else task.result()
