"""Authentication over real HTTP: Bearer and X-Auth-Token, refusals, users on first sight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport
from sqlalchemy import select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Project, User
from tests.support import TEST_SECRET, GatewayServer, GraphQLHttp, error_code

ME = "{ me { id role grants { project } } }"


async def test_me_with_a_bearer_token_through_a_gql_client(server: GatewayServer) -> None:
    transport = HTTPXAsyncTransport(
        url=server.url, headers={"Authorization": f"Bearer {server.token('alice', Role.PATIENT)}"}
    )
    async with Client(transport=transport) as session:
        result = await session.execute(gql(ME))
    assert result == {"me": {"id": "alice", "role": "PATIENT", "grants": []}}


async def test_x_auth_token_header_is_accepted(server: GatewayServer) -> None:
    token = server.token("dr-carol", Role.PROFESSIONAL)
    client = GraphQLHttp(server.url, token, header="X-Auth-Token")
    assert (await client.data(ME))["me"]["role"] == "PROFESSIONAL"


async def test_missing_token_is_unauthenticated(server: GatewayServer) -> None:
    error = await server.client().error(ME)
    assert error_code(error) == "UNAUTHENTICATED"
    assert error["path"] == ["me"]


async def test_expired_token_is_unauthenticated(server: GatewayServer) -> None:
    token = server.token("alice", Role.PATIENT, ttl=timedelta(seconds=-60))
    error = await server.client(token).error(ME)
    assert error_code(error) == "UNAUTHENTICATED"
    assert "expired" in error["message"]


async def test_bad_signature_is_unauthenticated(server: GatewayServer) -> None:
    forged = jwt.encode(
        {"sub": "root", "role": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)},
        "not-the-gateway-secret-" * 3,
        algorithm="HS256",
    )
    error = await server.client(forged).error(ME)
    assert (error_code(error), "signature" in error["message"]) == ("UNAUTHENTICATED", True)


async def test_unknown_role_is_unauthenticated(server: GatewayServer) -> None:
    token = jwt.encode(
        {"sub": "eve", "role": "superuser", "exp": datetime.now(UTC) + timedelta(hours=1)},
        TEST_SECRET,
        algorithm="HS256",
    )
    error = await server.client(token).error(ME)
    assert error_code(error) == "UNAUTHENTICATED"
    assert "superuser" in error["message"]


async def test_role_without_permission_is_forbidden_and_writes_nothing(
    server: GatewayServer, db: Database
) -> None:
    client = server.client(server.token("alice", Role.PATIENT))
    error = await client.error('mutation { createProject(code: "p", name: "P") { code } }')
    assert error_code(error) == "FORBIDDEN"
    async with db.session() as session:
        assert (await session.scalars(select(Project))).all() == []


async def test_users_are_created_on_first_sight_and_keep_their_latest_role(
    server: GatewayServer, db: Database
) -> None:
    await server.client(server.token("newcomer", Role.PATIENT)).data(ME)
    async with db.session() as session:
        user = await session.get(User, "newcomer")
        assert user is not None and user.role == "patient"
        first_seen = user.created_at
    await server.client(server.token("newcomer", Role.PROFESSIONAL)).data(ME)
    async with db.session() as session:
        user = await session.get(User, "newcomer")
        assert user is not None
        assert (user.role, user.created_at) == ("professional", first_seen)


async def test_invalid_token_creates_no_user(server: GatewayServer, db: Database) -> None:
    token = server.token("ghost", Role.PATIENT, ttl=timedelta(seconds=-60))
    await server.client(token).error(ME)
    async with db.session() as session:
        assert await session.get(User, "ghost") is None
