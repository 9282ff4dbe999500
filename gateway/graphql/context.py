"""The per-request (or per-WebSocket-connection) GraphQL context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.errors import LimitExceeded, Unauthenticated
from gateway.services import Services


@dataclass(slots=True)
class Context:
    services: Services
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    # Set by Strawberry from the WebSocket ``connection_init`` payload.
    connection_params: dict[str, Any] | None = None
    active_subscriptions: int = 0
    _principal: Principal | None = field(default=None, repr=False)
    _auth_error: Unauthenticated | None = field(default=None, repr=False)

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def signed_in(self) -> bool:
        """A valid token came with the request (or the WebSocket's ``connection_init``)."""
        return self._principal is not None

    @property
    def principal(self) -> Principal:
        """The caller; raises ``UNAUTHENTICATED`` (saying why) when there is none."""
        if self._principal is None:
            raise self._auth_error or Unauthenticated(
                "authentication required: send 'Authorization: Bearer <token>'"
            )
        return self._principal

    @contextmanager
    def subscription_slot(self) -> Iterator[None]:
        """Count a subscription against the connection's cap while it runs."""
        cap = self.services.settings.max_subscriptions_per_connection
        if self.active_subscriptions >= cap:
            raise LimitExceeded(
                f"a connection holds at most {cap} subscriptions at once", limit=cap
            )
        self.active_subscriptions += 1
        try:
            yield
        finally:
            self.active_subscriptions -= 1

    async def authenticate(self, token: str | None) -> Principal | None:
        """Verify ``token`` and remember its user. A bad token is not raised here, so that
        schema introspection and GraphiQL still work; fields that need a caller raise it."""
        if token is None:
            return None
        try:
            principal = self.services.tokens.verify(token)
        except Unauthenticated as exc:
            self._auth_error = exc
            return None
        await self.services.users.remember(principal)
        self._principal = principal
        return principal


Info = StrawberryInfo[Context, None]
