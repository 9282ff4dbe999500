"""Answers are encoded with orjson, and with the standard library where orjson refuses."""

from __future__ import annotations

import json

from gateway.graphql.schema import schema
from gateway.graphql.view import GatewayGraphQL


def test_answers_are_json_and_unencodable_text_falls_back() -> None:
    view = GatewayGraphQL(schema, graphiql=False)
    data = {"data": {"a": [1, "é", None, 2**63 - 1]}}
    assert json.loads(view.encode_json(data)) == data
    # A lone surrogate (it cannot be UTF-8) is escaped as JSON allows, not an error.
    echoed = {"errors": [{"message": "no operation named '\ud800'"}]}
    assert json.loads(view.encode_json(echoed)) == echoed


def test_answers_are_text_for_websocket_text_frames() -> None:
    assert isinstance(GatewayGraphQL(schema, graphiql=False).encode_json({"data": None}), str)
