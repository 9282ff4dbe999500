"""What a running gateway holds for its requests: settings, database, tokens, users, live hub."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.tokens import TokenService
from gateway.auth.users import UserRegistry
from gateway.db import Database
from gateway.live.announce import Announcer, announcer_for
from gateway.live.hub import Hub
from gateway.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    tokens: TokenService
    users: UserRegistry
    hub: Hub
    announcer: Announcer

    @classmethod
    def create(cls, settings: Settings) -> Services:
        db = Database(
            settings.database_url,
            idle_in_transaction_timeout_ms=settings.pg_idle_in_transaction_timeout_ms,
        )
        hub = Hub()
        return cls(
            settings=settings,
            db=db,
            tokens=TokenService(settings),
            users=UserRegistry(db),
            hub=hub,
            announcer=announcer_for(db, hub),
        )
