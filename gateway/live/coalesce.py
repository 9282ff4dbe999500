"""Wake-ups from the bus, coalesced per project before they reach the hub.

Under load a replica receives one message per commit: 16 writers committing in the same few
milliseconds would wake a caught-up subscriber 16 times, and each wake-up costs it a read of the
log that mostly finds what the previous one already returned. Merging what arrives within a
short window (``GATEWAY_BUS_COALESCE_MS``) into one wake-up per project, user and kind costs the
first message nothing (it is passed on at once, opening the window) and the others at most the
window. Merging loses nothing: a wake-up only says "read again", and the reader reads the log
from its own cursor.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.live.hub import Hub
from gateway.live.payloads import Wakeups

logger = logging.getLogger("gateway.live")


class Coalescer:
    def __init__(self, hub: Hub, window_seconds: float) -> None:
        self._hub = hub
        self._window = window_seconds
        self._pending = Wakeups()
        self._timer: asyncio.TimerHandle | None = None
        self.received = 0  # messages from the bus
        self.flushes = 0  # times the hub was told

    def deliver(self, message: str) -> None:
        """A message from the bus (called on the event loop's thread)."""
        self.received += 1
        try:
            self._pending.add(message)
        except ValueError:  # json.JSONDecodeError is one
            logger.warning("ignoring a malformed bus message: %r", message[:200])
        if self._timer is not None:
            return  # a window is open: its end passes this on with the rest
        self._flush()
        if self._window > 0:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._window_ended)

    def _window_ended(self) -> None:
        self._timer = None
        if self._pending:
            self._flush()  # and keep coalescing while messages keep coming
            self._timer = asyncio.get_running_loop().call_later(self._window, self._window_ended)

    def _flush(self) -> None:
        wakeups, self._pending = self._pending, Wakeups()
        if not wakeups:
            return
        self.flushes += 1
        for (project_id, user), tables in wakeups.actions.items():
            self._hub.wake(project_id, user, tables)
        for project_id, run_ids in wakeups.runs.items():
            self._hub.wake_runs(project_id, run_ids)
        for project in wakeups.statuses:
            self._hub.wake_status(project)
        for project_id in wakeups.access:
            self._hub.wake_access(project_id)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
