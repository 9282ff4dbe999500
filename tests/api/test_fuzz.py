"""Fuzzing the running gateway with operations generated from its schema, on both databases.

Every operation goes to a real gateway (uvicorn, rate limit off) over HTTP, graphql-transport-ws
or the legacy graphql-ws, as an admin, a patient, a professional or anonymously, into a world
with data (tests/support/fuzz.py). The test fails at the first HTTP 5xx, error coded
INTERNAL_SERVER_ERROR or not coded at all, WebSocket closed as failed, answer that does not come
(a hang), error logged by the server, or /healthz that stops answering (a crash); hypothesis then
shrinks the operation. The search is seeded (``derandomize``), so CI sees the same operations
every run. GATEWAY_FUZZ_EXAMPLES sets how many operations per database (default 400);
GATEWAY_FUZZ_SEED searches with another seed.
"""

from __future__ import annotations

import asyncio
import os
import time

from hypothesis import HealthCheck, given, seed, settings

from tests.support import GatewayServer, settings_for
from tests.support.fuzz import ErrorLog, Fuzzer, Operation, make_world, operations, repair

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "400"))
SEED = os.environ.get("GATEWAY_FUZZ_SEED")
REPAIR_EVERY = 100  # operations between restoring the world's members and grant


def test_fuzz_the_running_gateway(migrated_url: str, backend: str) -> None:
    server_settings = settings_for(migrated_url, rate_limit_per_second=0)
    with (
        GatewayServer.running(server_settings) as server,
        ErrorLog.installed() as errors,
        asyncio.Runner() as runner,
    ):
        world = runner.run(make_world(server))
        admin = server.client(world.tokens["admin"])
        fuzzer = Fuzzer(server, world, errors)
        runner.run(fuzzer.check_alive())
        sent = 0

        @settings(
            max_examples=EXAMPLES,
            derandomize=SEED is None,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operations(world))
        def fuzz(op: Operation) -> None:
            nonlocal sent
            sent += 1
            if sent % REPAIR_EVERY == 0:
                runner.run(repair(admin))
            runner.run(fuzzer.send(op))

        if SEED is not None:
            fuzz = seed(int(SEED))(fuzz)
        started = time.monotonic()
        try:
            fuzz()
        finally:
            runner.run(fuzzer.close())
        seconds = time.monotonic() - started
        print(
            f"\n{backend}: {sent} operations in {seconds:.1f} s; sent {dict(fuzzer.sent)}; "
            f"outcomes {dict(fuzzer.outcomes)}"
        )
        print({k: round(v, 1) for k, v in fuzzer.seconds.items()})
        for name, outcomes in sorted(fuzzer.by_field.items()):
            print(f"{name:>20}: {outcomes['ok']:3} ok of {outcomes.total():3}  {dict(outcomes)}")
        for took, op in fuzzer.slowest:
            print(f"{took:6.2f} s {op}")
        for message, count in fuzzer.messages.most_common(25):
            print(f"{count:6} {message}")
        assert sent >= EXAMPLES
