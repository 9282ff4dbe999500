"""Every mutation's commit reaches the live feeds: the domain announces it, no resolver does.

Each mutation of the schema runs for real (as an admin, on alice's data, in the access table's
world) against a gateway on each database, and the test watches what reaches the gateway's
live hub, where every subscription is woken (on PostgreSQL through NOTIFY, as from another
replica). A mutation without a row here fails the test, so a new one must say which feeds it
moves, or why none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from gateway.auth.principal import Role
from gateway.graphql.schema import schema
from gateway.live.announce import CHANNEL
from gateway.live.hub import Hub
from tests.api.test_access_table import CALLERS, MUTATIONS, Row, make_world
from tests.support import GatewayServer, GraphQLHttp
from tests.support.live import make_project, note

ACTIONS, RUNS, STATUS, ACCESS = "actions", "runs", "status", "access"
NONE: frozenset[str] = frozenset()

# What each mutation's commit wakes; an empty set says why nothing live shows it.
ANNOUNCES: dict[str, frozenset[str]] = {
    "grantAccess": frozenset({ACCESS}),  # the grantee's dashboards may show more
    "revokeAccess": frozenset({ACCESS}),  # the grantee's feeds of the data end
    "removeProjectMember": frozenset({ACCESS}),  # the member's feeds end
    "createProject": NONE,  # no feed watches a project that did not exist
    "addProjectMember": NONE,  # a new member has no feed to widen yet
    "defineTable": NONE,  # a new table has no actions; feeds pick it up when they start
    "setConflictPolicy": NONE,  # it applies to the batches written from now on
    "registerPush": NONE,  # push registrations show in no feed
    "unregisterPush": NONE,
    "createSync": NONE,  # a sync without runs: run feeds show runs
    "writeActions": frozenset({ACTIONS, STATUS}),
    "pushRecords": frozenset({ACTIONS, STATUS}),  # its documents are written as actions
    "reportDevice": frozenset({STATUS}),
    "acknowledgeProgress": frozenset({STATUS}),
    "recordSyncEvent": frozenset({STATUS}),
    "resolveConflict": frozenset({STATUS}),  # APPLY_LOSER also writes actions (below)
    "startSyncRun": frozenset({RUNS}),
    "updateSyncRun": frozenset({RUNS}),
    "completeSyncRun": frozenset({RUNS}),
    "failSyncRun": frozenset({RUNS}),
    "cancelSyncRun": frozenset({RUNS}),
}
# Reads that commit too: a device's read moves its progress and is a run of its sync.
DEVICE_READ = Row(
    'query($user: String) { actions(project: "clinic", user: $user, deviceId: "tab") { hasMore } }',
    (),
)
APPLY_LOSER = Row(
    "mutation($id: Int!) { resolveConflict(id: $id, resolution: APPLY_LOSER) { id } }",
    (),
    MUTATIONS["resolveConflict"].variables,
)
QUIET_SECONDS = 0.3  # how long a mutation that announces nothing is watched
BARRIER = "barrier"  # a project of its own, see Watched._barrier


class Watched:
    """The hub's wake-ups, recorded as they reach it (from the server's own thread), by kind and
    project (a code or an id); on PostgreSQL also the messages (NOTIFYs) the replica received."""

    def __init__(self, hub: Hub) -> None:
        self.seen: list[tuple[str, object]] = []
        self.messages: list[str] | None = None  # None: no bus (SQLite)
        for kind, method in ((ACTIONS, "wake"), (RUNS, "wake_runs"), (STATUS, "wake_status"),
                             (ACCESS, "wake_access")):  # fmt: skip
            setattr(hub, method, self._recording(kind, getattr(hub, method)))

    def _recording(self, kind: str, wake: Any) -> Any:
        def recorded(project: object, *args: Any) -> None:
            self.seen.append((kind, project))
            wake(project, *args)

        return recorded

    async def after(
        self, client: GraphQLHttp, row: Row, variables: dict[str, Any], expected: frozenset[str]
    ) -> set[str]:
        """What reached the hub for "clinic" once the operation was answered: all it expects
        (within 10 s), or whatever came within ``QUIET_SECONDS`` when it expects nothing."""
        await self._barrier(client)
        body = await client.execute(row.document, **variables)
        assert "errors" not in body, body
        waits = int((10 if expected else QUIET_SECONDS) / 0.01)
        for _ in range(waits):  # the wake-ups come from the server's thread
            if expected and expected <= self._kinds():
                break
            await asyncio.sleep(0.01)
        return self._kinds()

    async def messages_until_barrier(self, client: GraphQLHttp) -> list[str]:
        """The messages received since the last barrier, up to the next one."""
        assert self.messages is not None
        return await self._barrier(client)

    def _kinds(self) -> set[str]:
        return {kind for kind, project in self.seen if project != BARRIER}

    async def _barrier(self, client: GraphQLHttp) -> list[str]:
        """Announcements arrive in commit order (on PostgreSQL, NOTIFY): once one committed
        now arrived, the earlier operations' have too, and what follows is the next one's."""
        await client.data(f'mutation {{ reportDevice(project: "{BARRIER}", deviceId: "b") '
                          "{ deviceId } }")  # fmt: skip
        for _ in range(1000):
            if (STATUS, BARRIER) in self.seen and (
                self.messages is None or any(BARRIER in m for m in self.messages)
            ):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the barrier's announcement never came")
        self.seen.clear()
        if self.messages is None:
            return []
        # Messages come in commit order: what came before the barrier's own message belongs
        # to the operations before it.
        before = next(i for i, m in enumerate(self.messages) if BARRIER in m)
        earlier = self.messages[:before]
        self.messages[: before + 1] = []
        return earlier


def test_every_mutation_has_a_row() -> None:
    mutation = schema._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) == set(ANNOUNCES), "add the new mutation to ANNOUNCES"


async def test_every_commit_reaches_the_live_feeds(server: GatewayServer) -> None:
    world = await make_world(server)
    await world.admin.data(f'mutation {{ createProject(code: "{BARRIER}", name: "B") {{ code }} }}')
    watched = Watched(server.app.state.services.hub)
    admin = next(c for c in CALLERS if c.kind == "admin")
    client = server.client(server.token("root", Role.ADMIN))
    rows = {name: (row, ANNOUNCES[name]) for name, row in MUTATIONS.items()}  # in their order
    rows["resolveConflict(APPLY_LOSER)"] = (APPLY_LOSER, frozenset({ACTIONS, STATUS}))
    rows["actions(deviceId)"] = (DEVICE_READ, frozenset({RUNS, STATUS}))
    differences = []
    async with notifications(server) as watched.messages:
        for name, (row, expected) in rows.items():
            variables = await row.variables(world, admin) if row.variables else {}
            got = await watched.after(client, row, variables, expected)
            if got != expected:
                differences.append(f"{name}: expected {sorted(expected)}, got {sorted(got)}")
            if watched.messages is not None:  # one NOTIFY per commit, whatever it announces
                messages = await watched.messages_until_barrier(client)
                if len(messages) != (1 if expected else 0):
                    differences.append(f"{name}: {len(messages)} messages: {messages}")
    assert not differences, "\n".join(differences)


@asynccontextmanager
async def notifications(server: GatewayServer) -> AsyncIterator[list[str] | None]:
    """On PostgreSQL, the messages on the bus's channel as a replica receives them (None on
    SQLite, which has no bus)."""
    url = server.settings.database_url
    if not url.startswith("postgresql"):
        yield None
        return
    received: list[str] = []
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.add_listener(CHANNEL, lambda *args: received.append(args[-1]))
        yield received
    finally:
        await conn.close()


REFUSED = """mutation($actions: [ActionInput!]!) {
  writeActions(project: "live", actions: $actions, deviceId: "phone") { accepted }
}"""


async def test_a_refused_batch_announces_its_failed_run_and_no_actions(
    server: GatewayServer,
) -> None:
    """A write's announcements go with its transaction (on PostgreSQL, NOTIFY inside it): a
    refused batch rolled back announces nothing of it, only the FAILED run recorded after."""
    await make_project(server)
    admin = server.client(server.token("root", Role.ADMIN))
    await admin.data(f'mutation {{ createProject(code: "{BARRIER}", name: "B") {{ code }} }}')
    watched = Watched(server.app.state.services.hub)
    alice = server.client(server.token("alice", Role.PATIENT))
    await watched._barrier(admin)
    valid, missing = note(1), note(2) | {"action": "UPDATE"}  # no such record: refused
    body = await alice.execute(REFUSED, actions=[valid, missing])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["VALIDATION_FAILED"]
    for _ in range(1000):
        if RUNS in watched._kinds():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(QUIET_SECONDS)
    assert watched._kinds() == {RUNS}
    # and the same batch once valid announces its actions
    await watched._barrier(admin)
    assert (await alice.data(REFUSED, actions=[valid]))["writeActions"]["accepted"] == [0]
    for _ in range(1000):
        if {ACTIONS, RUNS, STATUS} <= watched._kinds():
            break
        await asyncio.sleep(0.01)
    assert watched._kinds() == {ACTIONS, RUNS, STATUS}
