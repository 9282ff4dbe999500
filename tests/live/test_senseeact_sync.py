"""Issue 16's "done when": clients written against SenSeeAct's documentation (write after
get-progress, read with progress in batches up to get-read-stats' latestTime, watch) sync two
devices of one user through the REST adapter, under concurrent writes, with nothing lost or
repeated (both databases, real HTTP through uvicorn).

Each device names itself with ``?deviceId=`` (the gateway's extension; SenSeeAct's own
protocol has one client per user: without it, both devices' writes would be the same
"own" writes that ``includeOwn: false`` leaves out, and get-progress would be per user).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateway.auth.principal import Role
from gateway.settings import Settings
from tests.support import GatewayServer, settings_for
from tests.support.senseeact import SenSeeAct, seed_project

USER = "alice"
BATCH = 5  # maxCount: several batches per sync


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return settings_for(migrated_url, senseeact_watch_seconds=1.0)


@dataclass
class Device:
    """A SenSeeAct client with its local database: its own changes (with their time and
    order), what it received, and its read progress per table."""

    api: SenSeeAct
    name: str
    clock: int
    local: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[str, int]] = field(default_factory=list)  # (recordId, time)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)

    def change(self, n: int) -> None:
        record_id = uuid.uuid4().hex
        self.clock += 1
        data = {"utcTime": self.clock, "value": float(n)}
        self.local.append(
            {
                "table": "steps",
                "user": USER,
                "action": "INSERT",
                "recordId": record_id,
                "jsonData": json.dumps({**data, "id": record_id}),
                "sampleTime": None,
                "time": self.clock,
                "order": 0,
                "source": "local",
                "author": None,
            }
        )

    async def upload(self) -> None:
        marks = await self.api.ok("get-progress", {}, deviceId=self.name)
        last = max(((m["time"], m["order"]) for m in marks), default=(-1, -1))
        new = [a for a in self.local if (a["time"], a["order"]) > last]
        if new:
            await self.api.ok("write", {"actions": new}, deviceId=self.name)

    def take(self, actions: list[dict[str, Any]]) -> None:
        for action in actions:
            self.received.append((action["recordId"], action["time"]))
            self.progress[action["table"]] = {
                "table": action["table"],
                "time": action["time"],
                "order": action["order"],
            }

    async def download(self) -> None:
        """get-read-stats for latestTime, then read in batches until a short one."""
        stats = await self.api.ok(
            "get-read-stats", {"progress": list(self.progress.values())}, deviceId=self.name
        )
        max_time = stats["latestTime"]
        for _ in range(200):  # far more than the log holds: a read that repeats never ends
            batch = await self.api.ok(
                "read",
                {"maxCount": BATCH, "maxTime": max_time, "progress": list(self.progress.values())},
                deviceId=self.name,
            )
            self.take(batch)
            if len(batch) < BATCH:
                return
        raise AssertionError("reading in batches never came to an end")

    async def watch(self) -> str:
        answer = await self.api.ok(
            "watch", {"maxCount": BATCH, "progress": list(self.progress.values())},
            deviceId=self.name,
        )  # fmt: skip
        if answer["resultCode"] == "OK":
            self.take(answer["actions"])
        return str(answer["resultCode"])


async def test_two_devices_sync_through_the_adapter_under_concurrent_writes(
    server: GatewayServer,
) -> None:
    await seed_project(server)
    token = server.token(USER, Role.PATIENT)
    now = int(time.time() * 1000)
    # The same clock region for both devices: their (time, order) pairs collide.
    phone = Device(SenSeeAct(server, token), "phone", now)
    tablet = Device(SenSeeAct(server, token), "tablet", now)
    server_side = SenSeeAct(server, server.token("root", Role.ADMIN))
    by_server: list[str] = []

    async def keep_writing(rounds: int) -> None:
        """The server side writes the user's data meanwhile, in small batches."""
        for r in range(rounds):
            actions = []
            for i in range(3):
                record_id = f"{(r * 10 + i + 1):032x}"
                by_server.append(record_id)
                data = {"utcTime": r, "value": 1.0, "id": record_id}
                actions.append(
                    {"table": "steps", "user": USER, "action": "INSERT", "recordId": record_id,
                     "jsonData": json.dumps(data), "time": now - 1000 + r, "order": i}
                )  # fmt: skip
            await server_side.ok("write", {"actions": actions}, user=USER)
            await asyncio.sleep(0)

    async def device_rounds(device: Device, rounds: int) -> None:
        for r in range(rounds):
            for n in range(r * 3, r * 3 + 3):
                device.change(n)
            await device.upload()
            await device.download()

    await asyncio.gather(
        keep_writing(12), device_rounds(phone, 8), device_rounds(tablet, 8), keep_writing(4)
    )
    # Everyone stopped: one more round each brings the devices up to date.
    for device in (phone, tablet):
        await device.upload()
    for device in (phone, tablet):
        await device.download()

    def ids(device: Device) -> set[str]:
        return {a["recordId"] for a in device.local}

    for device, other in ((phone, tablet), (tablet, phone)):
        got = Counter(record for record, _ in device.received)
        assert [r for r, n in got.items() if n > 1] == []  # nothing repeated
        assert set(got) == ids(other) | set(by_server)  # nothing lost, nothing of its own
    assert len(by_server) == 48

    # Caught up, watch waits and times out; a write by the other device ends it with OK.
    assert await phone.watch() == "TIMEOUT"
    waiting = asyncio.create_task(phone.watch())
    await asyncio.sleep(0.2)
    tablet.change(1000)
    await tablet.upload()
    assert await waiting == "OK"
    assert phone.received[-1][0] == tablet.local[-1]["recordId"]
    assert len(phone.received) == len(set(phone.received))


def test_a_watch_ends_when_its_client_leaves(migrated_url: str) -> None:
    """With a watch of a minute, a client that hangs up after half a second frees its place
    on the hub long before the minute is over."""
    settings = settings_for(migrated_url, senseeact_watch_seconds=60.0)
    with GatewayServer.running(settings) as server:
        asyncio.run(_leave_a_watch(server))


async def _leave_a_watch(server: GatewayServer) -> None:
    await seed_project(server)
    hub = server.app.state.services.hub
    before = hub.subscribers
    base = f"{server.base_url}/sync/project/default/watch"
    headers = {"X-Auth-Token": server.token(USER, Role.PATIENT)}
    async with httpx.AsyncClient(timeout=0.5) as http:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up before the watch ends
            await http.post(base, json={}, headers=headers, params={"deviceId": "phone"})
    # Nothing of it is left waiting on the hub (the server noticed the disconnect).
    for _ in range(100):
        if hub.subscribers == before:
            break
        await asyncio.sleep(0.05)
    assert hub.subscribers == before
