"""Access grants through GraphQL, and `me` showing them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import AccessGrant
from tests.support import GatewayServer, GraphQLHttp, create_project, error_code

GRANT = """mutation($project: String!, $grantee: String!, $user: String) {
  grantAccess(project: $project, grantee: $grantee, user: $user) { project user grantee grantedBy }
}"""
REVOKE = """mutation($project: String!, $grantee: String!, $user: String) {
  revokeAccess(project: $project, grantee: $grantee, user: $user)
}"""
ME = "{ me { id grants { project user grantee grantedBy } } }"


@pytest.fixture
async def alice(server: GatewayServer) -> GraphQLHttp:
    admin = server.client(server.token("root", Role.ADMIN))
    await create_project(admin, "study", "Study")
    return server.client(server.token("alice", Role.PATIENT))


async def grant_count(db: Database) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(AccessGrant)) or 0


async def test_patient_grants_a_professional_and_both_see_it(
    server: GatewayServer, alice: GraphQLHttp, db: Database
) -> None:
    granted = await alice.data(GRANT, project="study", grantee="dr-carol")
    expected = {"project": "study", "user": "alice", "grantee": "dr-carol", "grantedBy": "alice"}
    assert granted["grantAccess"] == expected
    # granting again is harmless and returns the same grant
    assert (await alice.data(GRANT, project="study", grantee="dr-carol"))["grantAccess"] == expected
    assert await grant_count(db) == 1

    assert (await alice.data(ME))["me"] == {"id": "alice", "grants": [expected]}
    carol = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    assert (await carol.data(ME))["me"]["grants"] == [expected]

    assert (await alice.data(REVOKE, project="study", grantee="dr-carol"))["revokeAccess"] is True
    assert (await alice.data(REVOKE, project="study", grantee="dr-carol"))["revokeAccess"] is False
    assert (await carol.data(ME))["me"]["grants"] == []


async def test_admin_grants_on_behalf_of_a_user(server: GatewayServer, alice: GraphQLHttp) -> None:
    admin = server.client(server.token("root", Role.ADMIN))
    granted = await admin.data(GRANT, project="study", grantee="dr-carol", user="alice")
    assert granted["grantAccess"]["user"] == "alice"
    assert granted["grantAccess"]["grantedBy"] == "root"
    assert (await alice.data(ME))["me"]["grants"][0]["grantee"] == "dr-carol"


async def test_grant_to_someone_known_as_a_patient_is_refused(
    server: GatewayServer, alice: GraphQLHttp, db: Database
) -> None:
    await server.client(server.token("bob", Role.PATIENT)).data(ME)
    error = await alice.error(GRANT, project="study", grantee="bob")
    assert error_code(error) == "BAD_USER_INPUT"
    assert "only professionals" in error["message"]
    assert await grant_count(db) == 0


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"project": "study", "grantee": "dr-carol", "user": "bob"}, "FORBIDDEN"),
        ({"project": "study", "grantee": "alice"}, "BAD_USER_INPUT"),
        ({"project": "study", "grantee": ""}, "BAD_USER_INPUT"),
        ({"project": "ghost", "grantee": "dr-carol"}, "NOT_FOUND"),
    ],
)
async def test_refused_grants_write_nothing(
    alice: GraphQLHttp, db: Database, variables: dict[str, str], code: str
) -> None:
    assert error_code(await alice.error(GRANT, **variables)) == code
    assert await grant_count(db) == 0


async def test_patient_cannot_revoke_for_another_user(
    server: GatewayServer, alice: GraphQLHttp, db: Database
) -> None:
    await alice.data(GRANT, project="study", grantee="dr-carol")
    bob = server.client(server.token("bob", Role.PATIENT))
    error = await bob.error(REVOKE, project="study", grantee="dr-carol", user="alice")
    assert error_code(error) == "FORBIDDEN"
    assert await grant_count(db) == 1


async def test_concurrent_grants_of_the_same_pair_make_one_grant(
    alice: GraphQLHttp, db: Database
) -> None:
    granted = await asyncio.gather(
        *(alice.data(GRANT, project="study", grantee="dr-carol") for _ in range(8))
    )
    assert {g["grantAccess"]["grantee"] for g in granted} == {"dr-carol"}
    assert await grant_count(db) == 1
