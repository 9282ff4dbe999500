"""Domain objects the schema serves as they are, without a GraphQL copy per item (a page of
1,000 actions builds none): their attributes must be exactly the GraphQL type's stored fields
(the values are the reads' tests' to check), and the type must not check what it is given. A field
added on one side and not the other fails here, before a reader gets a null or an error."""

from __future__ import annotations

import dataclasses
import json

import pytest
from graphql import GraphQLObjectType

from gateway.graphql.actions import DatabaseAction
from gateway.graphql.schema import schema
from gateway.sync.actions import ActionType, DeliveredAction

SERVED = [(DatabaseAction, DeliveredAction)]


@pytest.mark.parametrize(("graphql_type", "domain_type"), SERVED)
def test_served_as_delivered(graphql_type: type, domain_type: type) -> None:
    definition = graphql_type.__strawberry_definition__  # type: ignore[attr-defined]
    stored = {f.python_name for f in definition.fields if f.base_resolver is None}
    assert stored == {f.name for f in dataclasses.fields(domain_type)}
    built = schema._schema.get_type(definition.name)
    assert isinstance(built, GraphQLObjectType)
    assert built.is_type_of is None  # a domain object is not an instance of the GraphQL type


def test_computed_fields_read_the_domain_object() -> None:
    action = DeliveredAction(
        "steps", "alice", ActionType.INSERT, "a" * 32, json.dumps({"v": 1}), None, 1, 0,
        "local", None, None, 7,
    )  # fmt: skip
    assert DatabaseAction.data(action) == {"v": 1}  # type: ignore[arg-type]
