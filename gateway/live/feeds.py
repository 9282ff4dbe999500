"""Shared feeds: one per key (a project) while anyone watches it, however many do."""

from __future__ import annotations

from collections.abc import Callable
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

    def watch(self, key: K) -> _Watching[K, F]:
        """The key's feed while the block runs, started first if nobody watched it."""
        return _Watching(self, key)

    def _join(self, key: K) -> F:
        found = self._feeds.get(key)
        if found is None:
            feed, watchers = self._make(key), 0
            feed.start()
        else:
            feed, watchers = found
        self._feeds[key] = (feed, watchers + 1)
        return feed

    async def _leave(self, key: K) -> None:
        feed, watchers = self._feeds[key]
        if watchers == 1:
            del self._feeds[key]
            await feed.stop()
        else:
            self._feeds[key] = (feed, watchers - 1)


class _Watching(Generic[K, F]):
    """A class, not a generator: an idle subscription holds one for its whole life."""

    __slots__ = ("_feeds", "_key")

    def __init__(self, feeds: SharedFeeds[K, F], key: K) -> None:
        self._feeds, self._key = feeds, key

    async def __aenter__(self) -> F:
        return self._feeds._join(self._key)

    async def __aexit__(self, *_: object) -> None:
        await self._feeds._leave(self._key)
