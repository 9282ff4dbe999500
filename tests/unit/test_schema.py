"""schema.graphql is the published contract: it must equal what the code builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from graphql import Node, Visitor, parse, print_ast, visit

from gateway.graphql.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), (
        "schema.graphql is stale: run 'gateway export-schema > schema.graphql' and commit it"
    )


def test_export_schema_command_prints_the_same() -> None:
    gateway = Path(sys.executable).with_name("gateway")
    printed = subprocess.run(
        [str(gateway), "export-schema"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert printed == (ROOT / "schema.graphql").read_text()


def _without_descriptions(sdl: str) -> str:
    """The SDL's definitions alone, without their descriptions, so that the contract's shapes
    read as DESIGN.md writes them."""
    return print_ast(visit(parse(sdl), _NoDescriptions()))


class _NoDescriptions(Visitor):
    def enter(self, node: Node, *_: Any) -> Any:
        if getattr(node, "description", None) is None:
            return None
        kept = {key: getattr(node, key) for key in node.keys if key != "description"}
        return type(node)(**kept)


def test_contract_names_from_the_design_are_in_the_schema() -> None:
    sdl = _without_descriptions(export_sdl())
    for fragment in (
        "scalar Long",
        "scalar DateTime",
        "enum FieldType {\n  STRING\n  INT\n  FLOAT\n  BOOLEAN\n  DATETIME\n  JSON\n}",
        "input FieldInput {\n  name: String!\n  type: FieldType!\n  required: Boolean! = false\n}",
        "createProject(code: String!, name: String!, open: Boolean! = false): Project!",
        "addProjectMember(project: String!, user: String!): Project!",
        "removeProjectMember(project: String!, user: String!): Boolean!",
        "me: Me!",
    ):
        assert fragment in sdl
