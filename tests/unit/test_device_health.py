"""Device health rules (RegardingWork's device statuses), on the pure function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.sync.devices import DeviceStatus, HealthRules, status_of

NOW = datetime(2025, 8, 24, 15, 30, tzinfo=UTC)
RULES = HealthRules(stale_seconds=3600, offline_seconds=86400)


@pytest.mark.parametrize(
    ("seen_ago", "synced_ago", "pending_up", "pending_down", "status"),
    [
        (timedelta(minutes=1), timedelta(minutes=1), 0, 0, DeviceStatus.UP_TO_DATE),
        (timedelta(minutes=1), None, None, 0, DeviceStatus.UP_TO_DATE),
        (timedelta(minutes=1), timedelta(minutes=5), 2, 0, DeviceStatus.PENDING),  # waits up
        (timedelta(minutes=1), timedelta(minutes=5), 0, 3, DeviceStatus.PENDING),  # waits down
        (timedelta(minutes=1), timedelta(hours=2), 2, 0, DeviceStatus.STALE),
        (timedelta(minutes=1), None, 0, 1, DeviceStatus.STALE),  # behind, never synced
        (timedelta(hours=2), timedelta(hours=2), 0, 0, DeviceStatus.UP_TO_DATE),  # quiet is fine
        (timedelta(days=2), timedelta(days=2), 0, 0, DeviceStatus.OFFLINE),
        (timedelta(days=2), timedelta(minutes=1), 5, 5, DeviceStatus.OFFLINE),  # offline first
    ],
)
def test_status_of(
    seen_ago: timedelta,
    synced_ago: timedelta | None,
    pending_up: int | None,
    pending_down: int,
    status: DeviceStatus,
) -> None:
    assert (
        status_of(
            last_seen=NOW - seen_ago,
            last_sync=None if synced_ago is None else NOW - synced_ago,
            pending_up=pending_up,
            pending_down=pending_down,
            now=NOW,
            rules=RULES,
        )
        is status
    )
