"""The gateway's Prometheus metrics, in a registry of each app's own (several apps in one
process, as in the tests, do not share or clash), exposed at ``/metrics``.

Counted where things happen, at the cost of a dictionary lookup and an addition: operations
once each (``operations.py``: HTTP in the view, WebSocket operations around the schema's
stream; no per-field hooks), actions where a write commits (``Services.committed``, from the
counts the writer puts in ``Written``) and where the live stream delivers them
(``gateway/live/stream.py``), pushes where the dispatcher learns their outcome, announcements
where they fail. Gauges that need the database (devices, pending changes, runs, the read
horizon) are read when scraped, at most once per ``GATEWAY_METRICS_CACHE_SECONDS``
(``fleet.py``), so that frequent or concurrent scrapes cannot load the database.

Operation names come from clients, so their label is bounded: the first
``GATEWAY_METRICS_MAX_OPERATION_NAMES`` distinct names get a label of their own, later ones
count as ``other`` (an operation without a name as ``unnamed``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from gateway.observability.fleet import FleetState, read_fleet
from gateway.settings import Settings
from gateway.sync.devices import HealthRules

if TYPE_CHECKING:
    from gateway.db import Database

logger = logging.getLogger("gateway.metrics")

# Without a ``_created`` twin for every counter and histogram series (a process-wide switch of
# prometheus-client): Prometheus does not use them, and they would double what each scrape holds.
disable_created_metrics()

UNNAMED = "unnamed"
OTHER = "other"
UNKNOWN = "unknown"  # an operation whose type is not known (a document that does not parse)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")

# Queries and mutations: a cached read takes a millisecond, a large write seconds.
_OPERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Subscriptions last as long as a client stays: seconds to days.
_SUBSCRIPTION_BUCKETS = (1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600)
_MAX_CHILDREN = 4096  # operations' label children kept at hand (names a client invents are not)
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class OperationNames:
    """Operation names as labels, at most ``limit`` distinct ones (a client inventing names
    must not grow the registry without end)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if name is None:
            return UNNAMED
        if name in self._seen:
            return name
        if len(self._seen) >= self._limit or not _NAME.fullmatch(name):
            return OTHER
        self._seen.add(name)
        return name


def code_label(code: object) -> str:
    """An ``extensions.code`` as a label: the gateway's codes are few and upper case; anything
    else (a code some library made up) is ``OTHER``."""
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "OTHER"


class Metrics:
    def __init__(
        self,
        *,
        max_operation_names: int = 100,
        cache_seconds: float = 15.0,
        lag_sample_seconds: float = 1.0,
        rules: HealthRules | None = None,
    ) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.names = OperationNames(max_operation_names)
        self._cache_seconds = cache_seconds
        self._lag_sample_seconds = lag_sample_seconds
        self._rules = rules or HealthRules()
        self._refreshed_at: float | None = None
        self._refreshing: asyncio.Lock | None = None

        self.operations = Counter(
            "gateway_graphql_operations",
            "GraphQL operations run (HTTP and WebSocket), by operation name, type and outcome "
            "(ok, or error when the result had errors)",
            ("operation", "type", "outcome"),
            registry=r,
        )
        self.operation_seconds = Histogram(
            "gateway_graphql_operation_duration_seconds",
            "How long queries and mutations took, by operation name and type",
            ("operation", "type"),
            buckets=_OPERATION_BUCKETS,
            registry=r,
        )
        self.subscription_seconds = Histogram(
            "gateway_graphql_subscription_duration_seconds",
            "How long subscriptions lasted, by operation name",
            ("operation",),
            buckets=_SUBSCRIPTION_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "gateway_graphql_errors",
            "GraphQL errors returned to clients, by extensions.code",
            ("code",),
            registry=r,
        )
        self.http_responses = Counter(
            "gateway_http_responses",
            "HTTP responses sent, by status code (refusals before GraphQL included)",
            ("status",),
            registry=r,
        )
        self.websockets = Gauge(
            "gateway_websocket_connections", "WebSocket connections open", registry=r
        )
        self.subscriptions = Gauge(
            "gateway_subscriptions_active",
            "Subscriptions running, by root field",
            ("field",),
            registry=r,
        )
        self.actions_written = Counter(
            "gateway_actions_written", "New actions committed to the log", registry=r
        )
        self.actions_delivered = Counter(
            "gateway_actions_delivered",
            "Actions sent to live subscribers (databaseActions)",
            registry=r,
        )
        self.delivery_lag = Histogram(
            "gateway_delivery_lag_seconds",
            "From an action's write to its delivery to a live subscriber that was caught up "
            "(the newest action of a batch; sampled, see GATEWAY_METRICS_LAG_SAMPLE_SECONDS)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.publish_failures = Counter(
            "gateway_bus_publish_failures",
            "Announcements to subscribers and other replicas (NOTIFY or the bus) that failed, "
            "by kind; subscribers catch up at their next periodic re-read",
            ("kind",),
            registry=r,
        )
        self.push_deliveries = Counter(
            "gateway_push_deliveries",
            "Push wake-ups by outcome (sent, unregistered, rejected, failed after retries)",
            ("outcome",),
            registry=r,
        )
        self.pool = Gauge(
            "gateway_db_pool_connections",
            "Database connections of this replica's pool, by state (in_use, idle)",
            ("state",),
            registry=r,
        )
        self.pool_capacity = Gauge(
            "gateway_db_pool_capacity",
            "Connections the pool may open at most (pool size plus overflow)",
            registry=r,
        )
        self.devices = Gauge(
            "gateway_devices", "Devices of all projects by health status", ("status",), registry=r
        )
        self.pending = Gauge(
            "gateway_pending_changes",
            "Changes waiting, summed over devices: up (reported by devices, still to send) "
            "and down (records devices have yet to receive)",
            ("direction",),
            registry=r,
        )
        self.runs = Gauge("gateway_sync_runs", "Sync runs kept, by status", ("status",), registry=r)
        self.horizon_lag = Gauge(
            "gateway_read_horizon_lag_transactions",
            "Transactions completed beyond the read horizon, whose actions readers cannot see "
            "yet (PostgreSQL; 0 on SQLite): grows while an open transaction holds the horizon "
            "back and others commit",
            registry=r,
        )
        self.oldest_transaction = Gauge(
            "gateway_oldest_transaction_age_seconds",
            "Age of the oldest open transaction of the gateway's database that holds the "
            "read horizon back (PostgreSQL; 0 when none, and on SQLite)",
            registry=r,
        )
        self.refresh_failures = Counter(
            "gateway_metrics_refresh_failures",
            "Scrapes whose database gauges could not be read (the previous values were kept)",
            registry=r,
        )
        self._lag_sampled_at = 0.0
        self._children: dict[tuple[str | None, str, bool], tuple[Any, Any]] = {}
        self._statuses: dict[int, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Metrics:
        return cls(
            max_operation_names=settings.metrics_max_operation_names,
            cache_seconds=settings.metrics_cache_seconds,
            lag_sample_seconds=settings.metrics_lag_sample_seconds,
            rules=HealthRules(settings.device_stale_seconds, settings.device_offline_seconds),
        )

    # Counted where it happens

    def operation(
        self, name: str | None, kind: str, seconds: float | None, codes: Iterable[str]
    ) -> None:
        """One operation ended (``seconds`` None for a subscription, counted by
        ``subscription_ended``), with the codes of the errors it returned."""
        failed = False
        for code in codes:
            failed = True
            self.errors.labels(code_label(code)).inc()
        key = (name, kind, failed)
        children = self._children.get(key)
        if children is None:
            # ``labels`` takes a lock and builds a key each time: the children are kept
            # (bounded as the names are, since names beyond the limit share ``other``).
            label = self.names.label(name)
            children = (
                self.operations.labels(label, kind, "error" if failed else "ok"),
                self.operation_seconds.labels(label, kind),
            )
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = children
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    def refused(self, code: str) -> None:
        """A request refused before any operation ran (its error still has a code)."""
        self.errors.labels(code_label(code)).inc()

    def subscription_started(self, fields: Iterable[str]) -> None:
        for name in fields:
            self.subscriptions.labels(name).inc()

    def subscription_ended(self, name: str | None, fields: Iterable[str], seconds: float) -> None:
        for field_name in fields:
            self.subscriptions.labels(field_name).dec()
        self.subscription_seconds.labels(self.names.label(name)).observe(seconds)

    def written(self, count: int) -> None:
        if count:
            self.actions_written.inc(count)

    def delivered(self, count: int) -> None:
        self.actions_delivered.inc(count)

    def lag_sample_due(self) -> bool:
        """Whether a delivery lag should be measured now (at most once per
        ``GATEWAY_METRICS_LAG_SAMPLE_SECONDS`` per replica: each measure is one indexed
        lookup)."""
        now = time.monotonic()
        if self._lag_sampled_at and now < self._lag_sampled_at + self._lag_sample_seconds:
            return False
        self._lag_sampled_at = now
        return True

    def lag(self, written_at: datetime) -> None:
        self.delivery_lag.observe(max(0.0, (datetime.now(UTC) - written_at).total_seconds()))

    def publish_failed(self, kind: str) -> None:
        self.publish_failures.labels(kind).inc()

    def push_outcome(self, outcome: str) -> None:
        self.push_deliveries.labels(outcome).inc()

    def response(self, status: int) -> None:
        child = self._statuses.get(status)
        if child is None:  # statuses are few (the server's own)
            child = self._statuses[status] = self.http_responses.labels(str(status))
        child.inc()

    # Read when scraped

    async def exposition(self, db: Database) -> bytes:
        """The text a scrape gets, with the database gauges at most the cache's age old."""
        await self.refresh(db)
        return generate_latest(self.registry)

    async def refresh(self, db: Database) -> None:
        self._pool_gauges(db)
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:  # concurrent scrapes wait for one read
            now = time.monotonic()
            if self._refreshed_at is not None and now < self._refreshed_at + self._cache_seconds:
                return
            try:
                state = await read_fleet(db, self._rules)
            except Exception:
                self.refresh_failures.inc()
                logger.warning("could not read the database gauges for /metrics", exc_info=True)
            else:
                self._set_fleet(state)
            # Also after a failure: a database that is down is not asked again at every scrape.
            self._refreshed_at = time.monotonic()

    def _set_fleet(self, state: FleetState) -> None:
        for status, count in state.devices.items():
            self.devices.labels(str(status)).set(count)
        self.pending.labels("up").set(state.pending_up)
        self.pending.labels("down").set(state.pending_down)
        for status, count in state.runs.items():
            self.runs.labels(str(status)).set(count)
        self.horizon_lag.set(state.horizon_lag_xids)
        self.oldest_transaction.set(state.oldest_transaction_seconds)

    def _pool_gauges(self, db: Database) -> None:
        pool = db.engine.sync_engine.pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is None:  # a pool that does not count (SQLite in memory)
            return
        self.pool.labels("in_use").set(checked_out())
        self.pool.labels("idle").set(pool.checkedin())  # type: ignore[attr-defined]
        size = getattr(pool, "size", None)
        if size is not None:
            overflow = max(getattr(pool, "_max_overflow", 0), 0)
            self.pool_capacity.set(size() + overflow)
