"""The published schema documents itself: every type, field, argument, input field and enum value
has a description (what codegen puts in the generated code and GraphiQL shows on hover), in
the words of its users, and the custom scalars say where they are specified."""

from __future__ import annotations

import re

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    specified_scalar_types,
)

from gateway.graphql.schema import export_sdl, schema

SCHEMA = schema._schema
# Words of the gateway's insides, not of its users (README's architecture uses them).
INTERNAL = re.compile(
    r"\b(horizon|xid\w*|ORM|seeds?|sqlmodel|sqlalchemy|strawberry|graphql-core|resolver|"
    r"gateway/\w+|\w+\.py|asyncpg|aiosqlite)\b",
    re.IGNORECASE,
)


def _types() -> list[GraphQLNamedType]:
    return [
        t
        for name, t in sorted(SCHEMA.type_map.items())
        if not name.startswith("__") and name not in specified_scalar_types
    ]


def _documented() -> dict[str, str | None]:
    """Every documented place of the schema, by a path like `Query.actions(project:)`."""
    found: dict[str, str | None] = {}
    for t in _types():
        if t.name not in ("Query", "Mutation", "Subscription"):
            found[t.name] = t.description
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for name, field in t.fields.items():
                found[f"{t.name}.{name}"] = field.description
                for arg_name, arg in field.args.items():
                    found[f"{t.name}.{name}({arg_name}:)"] = arg.description
        elif isinstance(t, GraphQLInputObjectType):
            for name, input_field in t.fields.items():
                found[f"{t.name}.{name}"] = input_field.description
        elif isinstance(t, GraphQLEnumType):
            for name, value in t.values.items():
                found[f"{t.name}.{name}"] = value.description
        else:
            assert isinstance(t, GraphQLScalarType | GraphQLUnionType), t
    return found


def test_everything_is_described() -> None:
    missing = sorted(place for place, text in _documented().items() if not (text or "").strip())
    assert not missing, f"{len(missing)} without a description:\n" + "\n".join(missing)


def test_descriptions_speak_the_users_language() -> None:
    jargon = {
        place: match.group(0)
        for place, text in _documented().items()
        if text and (match := INTERNAL.search(text))
    }
    assert not jargon, jargon


def test_custom_scalars_say_where_they_are_specified() -> None:
    sdl = export_sdl()
    for name in ("Long", "DateTime", "JSON"):
        scalar = SCHEMA.type_map[name]
        assert isinstance(scalar, GraphQLScalarType)
        assert scalar.specified_by_url and scalar.specified_by_url.startswith("https://"), name
        assert f'scalar {name} @specifiedBy(url: "{scalar.specified_by_url}")' in sdl
