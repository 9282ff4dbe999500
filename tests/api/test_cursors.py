"""A Relay cursor of one list is refused by every other list, over the API (both databases)."""

from __future__ import annotations

from typing import Any

from gateway.auth.principal import Role
from tests.api.test_access_table import CALLERS, make_world, open_conflict
from tests.support import GatewayServer, GraphQLHttp

LISTS = {  # the connection of each list, asked for its first page and after a cursor
    "conflicts": 'conflicts(project: "clinic", user: "alice", first: 1, after: $after)',
    "casesPendingSync": 'casesPendingSync(project: "clinic", deviceName: "phone", user: "alice", '
    "first: 1, after: $after)",
    "syncHistory": 'syncHistory(project: "clinic", user: "alice", first: 1, after: $after)',
    "records": 'records(project: "clinic", table: "notes", user: "alice", first: 1, after: $after)',
}


async def page(admin: GraphQLHttp, name: str, after: str | None) -> dict[str, Any]:
    query = f"query($after: String) {{ {LISTS[name]} {{ edges {{ cursor }} }} }}"
    return await admin.execute(query, after=after)


async def test_a_cursor_of_one_list_is_refused_by_the_others(server: GatewayServer) -> None:
    world = await make_world(server)
    await open_conflict(world, next(c for c in CALLERS if c.kind == "admin"))
    admin = server.client(server.token("root", Role.ADMIN))
    cursors = {}
    for name in LISTS:
        body = await page(admin, name, None)
        (edge,) = body["data"][name]["edges"]
        cursors[name] = edge["cursor"]
        assert "errors" not in await page(admin, name, cursors[name])  # its own list takes it
    for name, cursor in cursors.items():
        for other in set(LISTS) - {name}:
            body = await page(admin, other, cursor)
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (name, other)
            assert body["data"] is None or body["data"][other] is None
