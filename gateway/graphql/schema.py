"""The one schema: each domain module contributes its queries, mutations and subscriptions."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.graphql.access import AccessMutation, AccessQuery
from gateway.graphql.actions import ActionMutation, ActionQuery
from gateway.graphql.caching import MAX_CACHED_OPERATIONS, ParseOnce
from gateway.graphql.conflicts import ConflictMutation, ConflictQuery
from gateway.graphql.devices import DeviceMutation, DeviceQuery
from gateway.graphql.errors import ErrorCodes
from gateway.graphql.hardening import ExecutionWithoutSuggestions, ValidationWithoutSuggestions
from gateway.graphql.inputs import StorableText
from gateway.graphql.limits import (
    OperationLimits,
    OperationLimitsExtension,
    RequestBudget,
    limit_rules,
)
from gateway.graphql.live import LiveSubscription
from gateway.graphql.projects import ProjectMutation, ProjectQuery
from gateway.graphql.push import PushMutation
from gateway.graphql.records import RecordQuery
from gateway.graphql.runs import SyncRunMutation, SyncRunQuery, SyncRunSubscription
from gateway.graphql.scalars import SCALARS
from gateway.graphql.status import SyncStatusQuery, SyncStatusSubscription
from gateway.graphql.system import SystemSubscription
from gateway.settings import Settings


@strawberry.type
class Query(
    AccessQuery,
    ProjectQuery,
    ActionQuery,
    RecordQuery,
    DeviceQuery,
    ConflictQuery,
    SyncStatusQuery,
    SyncRunQuery,
):
    pass


@strawberry.type
class Mutation(
    AccessMutation,
    ProjectMutation,
    ActionMutation,
    PushMutation,
    DeviceMutation,
    ConflictMutation,
    SyncRunMutation,
):
    pass


@strawberry.type
class Subscription(
    LiveSubscription, SystemSubscription, SyncStatusSubscription, SyncRunSubscription
):
    pass


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Refused requests are the client's business; failures of the gateway are logged by
        ``ErrorCodes`` when it masks them, on every transport."""


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema, hardened when ``settings`` turn introspection off: ``__schema`` and
    ``__type`` are refused at validation (``BAD_USER_INPUT``, from ``ErrorCodes``) and errors
    suggest no names. Without settings (the published SDL), introspection is on."""
    hardened = settings is not None and not settings.introspection_enabled
    limits = OperationLimits.from_settings(settings) if settings else OperationLimits()
    rules = limit_rules(limits)
    # Both caches live at module level; the factories only hand them to each request.
    validation: list[Any] = (
        [DisableIntrospection, ValidationWithoutSuggestions]
        if hardened
        else [lambda: ValidationCache(maxsize=MAX_CACHED_OPERATIONS)]
    )
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: OperationLimitsExtension(limits, rules),
            lambda: RequestBudget(limits.timeout_seconds, limits.response_bytes),
            ParseOnce,
            *validation,
            StorableText,
            ErrorCodes,
        ],
        execution_context_class=ExecutionWithoutSuggestions if hardened else None,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


schema = build_schema()


def export_sdl() -> str:
    return schema.as_str() + "\n"
