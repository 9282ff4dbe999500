"""Two gateway processes on one PostgreSQL database, as replicas behind a load balancer, on
each bus between them (PostgreSQL's LISTEN/NOTIFY, NATS)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService
from gateway.live.announce import LISTENER_NAME
from gateway.settings import Settings
from tests.support import GatewayServer, GraphQLHttp
from tests.support.live import (
    count_at_least,
    live_session,
    make_project,
    record_ids,
    subscription,
    take,
    write_notes,
)
from tests.support.proxy import TcpProxy

GATEWAY = str(Path(sys.executable).with_name("gateway"))
SECRET = "replica-secret-" + "r" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["postgres", "nats"])
def bus(request: pytest.FixtureRequest) -> str:
    """The bus between the replicas: a GATEWAY_BUS value (NATS's needs the server)."""
    if request.param == "nats":
        return str(request.getfixturevalue("nats_server"))
    return str(request.param)


@asynccontextmanager
async def replica(
    database_url: str, tmp_path: Path, bus: str = "postgres", **env_settings: str
) -> AsyncIterator[GatewayServer]:
    """``gateway serve`` in its own process; waits until it is ready."""
    async with replica_process(database_url, tmp_path, bus, **env_settings) as (server, _):
        yield server


@asynccontextmanager
async def replica_process(
    database_url: str, tmp_path: Path, bus: str = "postgres", **env_settings: str
) -> AsyncIterator[tuple[GatewayServer, asyncio.subprocess.Process]]:
    """``gateway serve`` in its own process, and the process; waits until it is ready.
    ``env_settings``: more settings, by name without the GATEWAY_ prefix."""
    port = free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        | {
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_JWT_SECRET": SECRET,
            "GATEWAY_BUS": bus,
            # Long enough that only a wake-up can deliver within the test's time limits.
            "GATEWAY_LIVE_POLL_SECONDS": "300",
        }
        | {f"GATEWAY_{k.upper()}": v for k, v in env_settings.items()}
    )
    proc = await asyncio.create_subprocess_exec(
        GATEWAY, "serve", "--port", str(port), "--log-level", "warning",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    settings = Settings(_env_file=None, database_url=database_url, jwt_secret=SECRET)
    server = GatewayServer(settings=settings, port=port)
    try:
        async with asyncio.timeout(60), httpx.AsyncClient() as http:
            while True:
                assert proc.returncode is None, "the replica exited"
                try:
                    if (await http.get(server.base_url + "/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield server, proc
    finally:
        if proc.returncode is None:
            proc.kill()  # a test that wanted it drained has waited for it
        await proc.wait()


async def listener_pids(database_url: str) -> list[int]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = "
            "current_database()",
            LISTENER_NAME,
        )
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


async def terminate(database_url: str, pid: int) -> None:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def cut_listeners(database_url: str) -> None:
    """End both replicas' LISTEN connections from the database side; return once both
    replicas listen again."""
    pids = await listener_pids(database_url)
    assert len(pids) == 2, "each replica holds exactly one LISTEN connection"
    for pid in pids:
        await terminate(database_url, pid)
    async with asyncio.timeout(20):
        # another process's state: nothing here could signal it
        while len(set(await listener_pids(database_url)) - set(pids)) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_writes_through_one_replica_reach_subscribers_of_the_other(
    postgres_url: str, tmp_path: Path, bus: str
) -> None:
    """...also after the bus connections are cut (LISTEN: terminated from the database side;
    NATS: the network between the replicas and the server cut)."""
    async with contextlib.AsyncExitStack() as stack:
        proxy: TcpProxy | None = None
        if bus.startswith("nats://"):
            target = urlsplit(bus)
            proxy = await stack.enter_async_context(
                TcpProxy(target.hostname or "", target.port or 4222)
            )
            bus = f"nats://127.0.0.1:{proxy.port}"
        one = await stack.enter_async_context(replica(postgres_url, tmp_path, bus))
        two = await stack.enter_async_context(replica(postgres_url, tmp_path, bus))
        await make_project(one)
        writer = GraphQLHttp(two.url, TokenService(two.settings).issue("alice", Role.PATIENT))
        token = one.token("alice", Role.PATIENT)
        async with (
            live_session(one, token, "graphql-transport-ws") as session,
            subscription(session, deviceId="laptop") as stream,
        ):
            await asyncio.sleep(0.5)  # subscribed on replica one
            await write_notes(writer, [1])
            assert record_ids(await take(stream, count_at_least(1))) == [f"{1:032x}"]

            if proxy is None:
                await cut_listeners(postgres_url)
            else:
                before = proxy.accepted
                proxy.cut()
                async with asyncio.timeout(20):  # both replicas' nats-py reconnected
                    while proxy.accepted < before + 2:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)

            await write_notes(writer, [2, 3])
            later = await take(stream, count_at_least(2), seconds=20)
        assert record_ids(later) == [f"{2:032x}", f"{3:032x}"]
