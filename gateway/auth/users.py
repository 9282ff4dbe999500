"""Users are created on first sight of a valid token."""

from __future__ import annotations

import time

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.dialect import insert
from gateway.db.models import User
from gateway.db.types import utcnow


class UserRegistry:
    """Records each caller once, and refreshes ``last_seen_at`` at most every
    ``refresh_seconds`` per process, so authenticated requests do not each cost a write."""

    _MAX_REMEMBERED = 100_000

    def __init__(self, db: Database, refresh_seconds: float = 300.0) -> None:
        self._db = db
        self._refresh_seconds = refresh_seconds
        self._seen: dict[str, tuple[Role, float]] = {}

    async def remember(self, principal: Principal) -> None:
        now = time.monotonic()
        seen = self._seen.get(principal.user_id)
        if seen and seen[0] is principal.role and now - seen[1] < self._refresh_seconds:
            return
        stamp = utcnow()
        async with self._db.transaction() as session:
            stmt = insert(session, User).values(
                id=principal.user_id,
                role=principal.role.value,
                created_at=stamp,
                last_seen_at=stamp,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[User.id],
                    set_={"role": stmt.excluded.role, "last_seen_at": stmt.excluded.last_seen_at},
                )
            )
        if len(self._seen) >= self._MAX_REMEMBERED:
            self._seen.clear()
        self._seen[principal.user_id] = (principal.role, now)
