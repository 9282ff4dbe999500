"""Errors the domain raises, each with the public ``extensions.code`` from DESIGN.md.

They know nothing of GraphQL: graphql-core copies an exception's ``extensions`` dict onto the
error it reports, so the code reaches clients without the domain importing the transport.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Conflict(GatewayError):
    code = "CONFLICT"


class TableNotAllowed(GatewayError):
    code = "TABLE_NOT_ALLOWED"


class ValidationFailed(GatewayError):
    code = "VALIDATION_FAILED"


class LimitExceeded(GatewayError):
    code = "LIMIT_EXCEEDED"


class DatabaseUnavailable(GatewayError):
    """The database could not be reached or went away mid-request: a failure of the gateway's
    (so ``INTERNAL_SERVER_ERROR``, DESIGN's only code for it), but a known one, said plainly
    and marked ``retryable`` for clients."""

    code = "INTERNAL_SERVER_ERROR"
