"""SenSeeAct's REST adapter in tests: its seed's project and a client."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.auth.principal import Role
from tests.support import GatewayServer, create_project

SEED_USER = "b43f784d76c44e7a9ae0370b91521753"  # the seed's examples' user


async def seed_project(server: GatewayServer, code: str = "default") -> None:
    """The examples' project: ``steps`` with the fields of their jsonData."""
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, code, code.title(), members=(SEED_USER, "alice", "bob"))
    await admin.data(
        f"""mutation {{ defineTable(project: "{code}", name: "steps", fields: [
             {{name: "utcTime", type: INT, required: true}}, {{name: "localTime", type: DATETIME}},
             {{name: "timezone", type: STRING}}, {{name: "value", type: FLOAT, required: true}}
           ]) {{ name }} }}"""
    )


class SenSeeAct:
    """A client as SenSeeAct's documentation describes it: POST, X-Auth-Token, JSON."""

    def __init__(self, server: GatewayServer, token: str | None, project: str = "default"):
        self.base = f"{server.base_url}/sync/project/{project}"
        self.headers = {"X-Auth-Token": token} if token else {}

    async def post(self, endpoint: str, content: Any = None, **params: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=120) as http:
            return await http.post(
                f"{self.base}/{endpoint}",
                params=params,
                headers=self.headers,
                json=content,
            )

    async def ok(self, endpoint: str, content: Any = None, **params: str) -> Any:
        answer = await self.post(endpoint, content, **params)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.content else None
