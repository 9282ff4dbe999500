"""The one schema: each domain module contributes its queries, mutations and subscriptions."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.graphql.access import AccessMutation, AccessQuery
from gateway.graphql.actions import ActionMutation, ActionQuery, ActionSubscription
from gateway.graphql.caching import ParseOnce
from gateway.graphql.cases import CaseQuery
from gateway.graphql.conflicts import ConflictMutation, ConflictQuery
from gateway.graphql.devices import DeviceMutation, DeviceQuery, DeviceSubscription
from gateway.graphql.errors import ErrorCodes
from gateway.graphql.execution import FlatLists
from gateway.graphql.hardening import ExecutionWithoutSuggestions
from gateway.graphql.history import HistoryMutation, HistoryQuery
from gateway.graphql.inputs import StorableText
from gateway.graphql.limits import OperationLimits, RequestBudget
from gateway.graphql.nodes import NodeQuery
from gateway.graphql.projects import ProjectMutation, ProjectQuery
from gateway.graphql.push import PushMutation
from gateway.graphql.quick import QuickOperations
from gateway.graphql.records import RecordQuery
from gateway.graphql.replication import (
    ReplicationMutation,
    ReplicationQuery,
    ReplicationSubscription,
)
from gateway.graphql.runs import SyncRunMutation, SyncRunQuery, SyncRunSubscription
from gateway.graphql.scalars import SCALARS
from gateway.graphql.status import SyncStatusQuery, SyncStatusSubscription
from gateway.graphql.system import SystemSubscription
from gateway.graphql.validation import Validation
from gateway.observability.operations import observed_stream
from gateway.settings import Settings


@strawberry.type
class Query(
    AccessQuery,
    ProjectQuery,
    ActionQuery,
    RecordQuery,
    ReplicationQuery,
    DeviceQuery,
    CaseQuery,
    HistoryQuery,
    ConflictQuery,
    SyncStatusQuery,
    SyncRunQuery,
    NodeQuery,
):
    pass


@strawberry.type
class Mutation(
    AccessMutation,
    ProjectMutation,
    ActionMutation,
    ReplicationMutation,
    PushMutation,
    DeviceMutation,
    HistoryMutation,
    ConflictMutation,
    SyncRunMutation,
):
    pass


@strawberry.type
class Subscription(
    ActionSubscription,
    ReplicationSubscription,
    DeviceSubscription,
    SystemSubscription,
    SyncStatusSubscription,
    SyncRunSubscription,
):
    pass


class GatewaySchema(strawberry.Schema):
    #: Requests seen before, run without Strawberry's per-request pipeline (``quick.py``).
    quick: QuickOperations | None = None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Refused requests are the client's business; failures of the gateway are logged by
        ``ErrorCodes`` when it masks them, on every transport."""

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> Any:
        """Strawberry's, counted and logged once per operation: both WebSocket protocols run
        every operation through here (see ``gateway/observability/operations.py``)."""
        source = await super().stream(query, *args, **kwargs)
        subscription = self._schema.subscription_type
        return observed_stream(
            source,
            query,
            kwargs.get("operation_name"),
            kwargs.get("context_value"),
            subscription.fields if subscription is not None else (),
        )


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema, hardened when ``settings`` turn introspection off: ``__schema`` and
    ``__type`` are refused at validation (``BAD_USER_INPUT``, from ``ErrorCodes``) and errors
    suggest no names. Without settings (the published SDL), introspection is on. The operation
    limits and runtime budgets are the settings' (or their defaults)."""
    hardened = settings is not None and not settings.introspection_enabled
    limits = OperationLimits.from_settings(settings) if settings else OperationLimits()
    # Validation's cache lives at module level; the factories only hand it to each request.
    built = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            *([DisableIntrospection] if hardened else []),
            lambda: Validation(limits, hide_suggestions=hardened),
            lambda: RequestBudget(limits.timeout_seconds, limits.response_bytes),
            ParseOnce,
            StorableText,
            ErrorCodes,
        ],
        execution_context_class=ExecutionWithoutSuggestions if hardened else FlatLists,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    built.quick = QuickOperations(built, limits, hide_suggestions=hardened)
    return built


schema = build_schema()


def export_sdl() -> str:
    return schema.as_str() + "\n"
