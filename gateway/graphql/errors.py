"""Every error reaches the client with an ``extensions.code``, on every transport."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from gateway.errors import BadUserInput, GatewayError
from gateway.graphql.limits import as_limit_error

logger = logging.getLogger("gateway.graphql")

INTERNAL_ERROR_MESSAGE = "Unexpected error."


def is_unexpected(error: GraphQLError) -> bool:
    """An exception from inside the gateway, as opposed to a refused request: raised by a
    resolver (the error has a path) or by a subscription's stream (Strawberry wraps it without
    a path or a place in the document). A request's own problems (syntax, validation, variables)
    point at the document."""
    original = error.original_error
    if original is None or isinstance(original, GatewayError | GraphQLError):
        return False
    return error.path is not None or not error.nodes


class ErrorCodes(SchemaExtension):
    """Domain errors already carry their code. Errors of the request itself (syntax, unknown
    fields, a bad enum value or variable) are ``BAD_USER_INPUT``. Anything else is a bug: its
    message may leak internals (SQL, parameters), so clients see a generic one and the server
    logs it in full.

    HTTP results pass through ``on_operation``; results sent over WebSockets (both protocols,
    subscriptions and queries alike) through ``on_stream_result``."""

    def on_operation(self) -> Iterator[None]:
        yield
        code_errors(self.execution_context.result)

    def on_stream_result(self, result: object) -> Iterator[None]:
        code_errors(result)
        yield


def code_errors(result: object) -> None:
    """Code the errors of a result: Strawberry's, or graphql-core's on the HTTP path."""
    errors = getattr(result, "errors", None)
    if not errors:
        return
    request_error = isinstance(result, PreExecutionError)
    result.errors = [_coded(error, request_error) for error in errors]  # type: ignore[attr-defined]


def _coded(error: GraphQLError, request_error: bool) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    if (limit := as_limit_error(error)) is not None:
        return limit
    if not request_error and is_unexpected(error):
        logger.error(
            "unexpected error in %s", error.path or "a live stream", exc_info=error.original_error
        )
        return internal_error(error)
    error.extensions = {**(error.extensions or {}), "code": BadUserInput.code}
    return error


def internal_error(error: GraphQLError | None = None) -> GraphQLError:
    """What clients see of a failure of the gateway (at ``error``'s place, when given)."""
    return GraphQLError(
        INTERNAL_ERROR_MESSAGE,
        nodes=error.nodes if error else None,
        path=error.path if error else None,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )
