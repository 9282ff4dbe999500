"""The authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    PROFESSIONAL = "professional"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: object) -> Role:
        """Roles arrive in tokens and on the command line in any case (``admin``, ``ADMIN``)."""
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        allowed = ", ".join(role.value for role in cls)
        raise ValueError(f"unknown role {value!r} (expected one of: {allowed})")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role
    # When the token stops being valid; live subscriptions end then. Not part of identity.
    expires_at: datetime | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
