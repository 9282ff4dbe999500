"""GraphQL over HTTP (graphql/graphql-over-http): media types, status codes, request shapes.

- The response media type follows ``Accept``, by quality then by the order the client listed
  them: ``application/graphql-response+json`` or ``application/json``. Without ``Accept``, or
  with only wildcards (``*/*``, ``application/*``), it is ``application/json``: the spec's
  pre-2025 default, which graphql-http's audit still checks and existing clients expect.
  ``Accept`` naming neither is 406.
- With ``application/graphql-response+json``, a request that fails before execution (it does
  not parse, validate or coerce its variables) is 400 and has no ``data``; with
  ``application/json`` it is 200, as before.
- Whatever the media type, a request that is not a GraphQL request at all is refused with the
  status HTTP has for it and a GraphQL error document with ``extensions.code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.http import GraphQLRequestData

from gateway.errors import BadUserInput, NotFound
from gateway.http_limits import error_document

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)


class HttpRefusal(Exception):
    """A request refused by the transport, before anything runs."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = BadUserInput.code,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})

    @classmethod
    def for_status(cls, status: int, message: str) -> HttpRefusal:
        """One of Strawberry's own refusals (``HTTPException``)."""
        return cls(status, message, code=NotFound.code if status == 404 else BadUserInput.code)

    def body(self) -> bytes:
        return error_document(self.message, self.code)


@dataclass(slots=True)
class Exchange:
    """One HTTP request's negotiation and outcome, shared by the view's hooks."""

    media_type: str | None
    request: GraphQLRequestData | None = None
    status: int = 200
    #: The HTTP streaming protocol ``Accept`` asked for (Strawberry's ``multipart-subscription``
    #: or ``graphql-sse``), None for one JSON answer.
    stream: str | None = None

    @property
    def content_type(self) -> str:
        return f"{self.media_type or JSON}; charset=utf-8"


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in, or None when ``Accept`` allows neither."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, int] | None = None  # (quality, -position, preference)
    chosen: str | None = None
    for candidate_rank, candidate in enumerate(_SUPPORTED):
        quality, position = _quality(accept, candidate)
        if quality <= 0:
            continue
        # Equal quality: the range the client listed first; wildcards alone: application/json.
        key = (quality, -position, candidate_rank)
        if best is None or key > best:
            best, chosen = key, candidate
    return chosen


def _quality(accept: str, media_type: str) -> tuple[float, int]:
    """The quality ``accept`` gives ``media_type`` by its most specific matching range, and
    where that range is listed (wildcards count as listed last)."""
    kind = media_type.split("/")[0]
    found: tuple[int, float, int] | None = None  # (specificity, quality, position)
    for position, part in enumerate(accept.split(",")):
        name, *params = (p.strip() for p in part.split(";"))
        name = name.lower()
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(name)
        if specificity is None:
            continue
        quality = 1.0
        charset_ok = True
        for param in params:
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"').lower()
            if key == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
            elif key == "charset" and value not in ("utf-8", "utf8"):
                charset_ok = False
        if not charset_ok:
            quality = 0.0
        if found is None or specificity > found[0]:
            found = (specificity, quality, position if specificity else 1_000_000)
    if found is None:
        return 0.0, 0
    return found[1], found[2]


def check_content_type(content_type: str | None) -> None:
    """POST bodies are JSON in UTF-8 (the spec's one required request media type)."""
    if not content_type:
        raise HttpRefusal(415, "send the request as JSON: 'Content-Type: application/json'")
    media, *params = (p.strip().lower() for p in content_type.split(";"))
    charset = next((p.partition("=")[2].strip('"') for p in params if p.startswith("charset")), "")
    if media != JSON or charset not in ("", "utf-8", "utf8"):
        raise HttpRefusal(
            415,
            f"unsupported content type {content_type!r}: send 'application/json' in UTF-8",
            headers={"Accept-Post": "application/json"},
        )


def parse_body(body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        raise HttpRefusal(400, "the request body is empty: send a JSON object with 'query'")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpRefusal(400, f"the request body is not valid JSON: {exc}") from exc
    if isinstance(data, list):
        # Refused rather than run: a batch shares one status code and one rate-limit count
        # among its operations, and HTTP keep-alive (or HTTP/2) makes separate requests cheap.
        raise HttpRefusal(
            400,
            "batched requests are not supported: send one operation per request (with Apollo "
            "Client, HttpLink rather than BatchHttpLink)",
        )
    if not isinstance(data, dict):
        raise HttpRefusal(400, "the request body must be a JSON object with 'query'")
    return data


def parse_query_params(params: Mapping[str, str]) -> Mapping[str, Any]:
    data: dict[str, Any] = dict(params)
    for name in ("variables", "extensions"):
        if data.get(name):
            try:
                data[name] = json.loads(data[name])
            except ValueError as exc:
                raise HttpRefusal(400, f"the '{name}' parameter is not valid JSON") from exc
    return data


def request_data(data: Mapping[str, Any], protocol: Any = "http") -> GraphQLRequestData:
    """The request's parameters, each of the type the spec asks for."""
    query = data.get("query")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpRefusal(400, "'extensions' must be an object")
    persisted = (extensions and "persistedQuery" in extensions) or "documentId" in data
    if query is None and not persisted:
        raise HttpRefusal(400, "the request has no 'query'")
    if query is not None and not isinstance(query, str):
        raise HttpRefusal(400, "'query' must be a string")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpRefusal(400, "'variables' must be an object")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise HttpRefusal(400, "'operationName' must be a string")
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=operation_name,
        extensions=extensions,
        protocol=protocol,
    )


def is_request_error(data: Any, errors: list[GraphQLError] | None) -> bool:
    """The request failed before execution (parse, validation, variables): no data, and no
    error points at a field."""
    return data is None and bool(errors) and all(e.path is None for e in errors or ())
