"""Users on first sight, in the domain layer."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.auth.principal import Principal, Role
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.db.models import User


async def test_remember_creates_once_and_follows_role_changes(db: Database) -> None:
    registry = UserRegistry(db)
    await registry.remember(Principal("alice", Role.PATIENT))
    await registry.remember(Principal("alice", Role.PATIENT))
    await registry.remember(Principal("carol", Role.PROFESSIONAL))
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 2
    # Another process (a second registry) sees a role change and records it.
    await UserRegistry(db).remember(Principal("alice", Role.ADMIN))
    async with db.session() as session:
        alice = await session.get(User, "alice")
    assert alice is not None and alice.role == "admin"


async def test_last_seen_is_refreshed_after_the_interval(db: Database) -> None:
    eager = UserRegistry(db, refresh_seconds=0)
    await eager.remember(Principal("bob", Role.PATIENT))
    async with db.session() as session:
        first = (await session.get(User, "bob")).last_seen_at  # type: ignore[union-attr]
    await eager.remember(Principal("bob", Role.PATIENT))
    async with db.session() as session:
        bob = await session.get(User, "bob")
    assert bob is not None and bob.last_seen_at > first and bob.created_at <= first
