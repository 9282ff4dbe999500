"""Every error reaches the client with an ``extensions.code``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import BadUserInput, GatewayError

logger = logging.getLogger("gateway.graphql")

INTERNAL_ERROR_MESSAGE = "Unexpected error."


def is_unexpected(error: GraphQLError) -> bool:
    """An exception from inside the gateway, as opposed to a refused request."""
    return error.path is not None and not isinstance(error.original_error, GatewayError)


class ErrorCodes(SchemaExtension):
    """Domain errors already carry their code. Errors without a path come from the request
    itself (syntax, unknown fields, a bad enum value or variable) and are ``BAD_USER_INPUT``.
    Anything else is a bug: its message may leak internals, so clients see a generic one."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self._coded(error) for error in errors]

    @staticmethod
    def _coded(error: GraphQLError) -> GraphQLError:
        if error.extensions and "code" in error.extensions:
            return error
        if is_unexpected(error):
            return GraphQLError(
                INTERNAL_ERROR_MESSAGE,
                nodes=error.nodes,
                path=error.path,
                extensions={"code": "INTERNAL_SERVER_ERROR"},
            )
        error.extensions = {**(error.extensions or {}), "code": BadUserInput.code}
        return error
