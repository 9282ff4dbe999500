"""The graphql-codegen example (clients/codegen/) stays usable: it maps exactly the schema's
custom scalars, points at the published schema, and its example operations are valid against
it. (graphql-codegen itself is not a dependency here: the example was run by hand with the
versions its header names, and the generated files compiled with tsc --strict.)"""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLScalarType, parse, specified_scalar_types, validate

from gateway.graphql.schema import schema

EXAMPLE = Path(__file__).resolve().parents[2] / "clients" / "codegen"


def test_codegen_maps_every_custom_scalar() -> None:
    config = (EXAMPLE / "codegen.ts").read_text()
    block = re.search(r"^const scalars = \{(.*?)^\};", config, re.DOTALL | re.MULTILINE)
    assert block is not None
    mapped = set(re.findall(r"^\s*(\w+):", block.group(1), re.MULTILINE))
    custom = {
        name
        for name, t in schema._schema.type_map.items()
        if isinstance(t, GraphQLScalarType) and name not in specified_scalar_types
    }
    assert mapped == custom
    assert config.count("strictScalars: true") == config.count("scalars,") == 2


def test_codegen_reads_the_published_schema_and_valid_operations() -> None:
    config = (EXAMPLE / "codegen.ts").read_text()
    [schema_path] = re.findall(r'schema: "([^"]+)"', config)
    assert (EXAMPLE / schema_path).resolve().name == "schema.graphql"
    assert (EXAMPLE / schema_path).is_file()
    for operations in EXAMPLE.glob("src/**/*.graphql"):
        assert validate(schema._schema, parse(operations.read_text())) == [], operations
