"""The pieces of gateway/observability that need no server: operation names as bounded labels,
and the log formats."""

from __future__ import annotations

import json
import logging
import sys

from gateway.observability.logs import JsonFormatter, RequestIdFilter, TextFormatter
from gateway.observability.metrics import OTHER, UNNAMED, OperationNames
from gateway.observability.request_id import current_request_id


def test_operation_names_are_bounded() -> None:
    names = OperationNames(2)
    labels = [names.label(n) for n in ("A", "B", "C", "A", None, "x" * 500, "B")]
    assert labels == ["A", "B", OTHER, "A", UNNAMED, OTHER, "B"]


def test_development_lines_are_readable() -> None:
    record = logging.LogRecord(
        "gateway.access", logging.INFO, __file__, 1, "http request", (), None
    )
    record.fields = {"status": 200, "operation": "Me"}
    token = current_request_id.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        current_request_id.reset(token)
    text = TextFormatter().format(record)
    assert text.endswith("INFO  gateway.access [rid-1] http request status=200 operation=Me")
    as_json = json.loads(JsonFormatter().format(record))
    assert (as_json["request_id"], as_json["status"]) == ("rid-1", 200)


def test_an_error_logged_with_its_exception_keeps_the_stack_trace_in_the_line() -> None:
    try:
        raise RuntimeError("the database went away")
    except RuntimeError:
        record = logging.LogRecord(
            "gateway.graphql", logging.ERROR, __file__, 1, "unexpected error in %s", ("me",),
            sys.exc_info(),
        )  # fmt: skip
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "unexpected error in me"
    assert "Traceback" in line["exception"] and "the database went away" in line["exception"]
