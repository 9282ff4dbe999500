"""Shared feeds: one per key (a project) while anyone watches it, however many do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Generic, Protocol, TypeVar


class Feed(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


K = TypeVar("K")
F = TypeVar("F", bound=Feed)


class SharedFeeds(Generic[K, F]):
    """Started by the first watcher of a key, stopped when its last watcher leaves."""

    def __init__(self, make: Callable[[K], F]) -> None:
        self._make = make
        self._feeds: dict[K, tuple[F, int]] = {}

    def watchers(self, key: K) -> int:
        found = self._feeds.get(key)
        return found[1] if found is not None else 0

    def feed(self, key: K) -> F | None:
        found = self._feeds.get(key)
        return found[0] if found is not None else None

    @asynccontextmanager
    async def watch(self, key: K) -> AsyncIterator[F]:
        found = self._feeds.get(key)
        if found is None:
            feed, watchers = self._make(key), 0
            feed.start()
        else:
            feed, watchers = found
        self._feeds[key] = (feed, watchers + 1)
        try:
            yield feed
        finally:
            feed, watchers = self._feeds[key]
            if watchers == 1:
                del self._feeds[key]
                await feed.stop()
            else:
                self._feeds[key] = (feed, watchers - 1)
