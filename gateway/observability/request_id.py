"""The request id: one per HTTP request or WebSocket connection, in every log line it causes.

A client (or a proxy in front of the gateway) may send its own in ``X-Request-ID`` so that its
logs and the gateway's can be joined; it is taken when it is sane (at most
``MAX_REQUEST_ID_LENGTH`` characters of letters, digits and ``-_.:+=/``), since it is copied into
logs and a response header, and otherwise replaced by a generated one. It lives in a context
variable: tasks started while it is set (a WebSocket's operations) carry it with them.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
_SANE = re.compile(rf"[A-Za-z0-9\-_.:+=/]{{1,{MAX_REQUEST_ID_LENGTH}}}")

current_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def accepted_or_new(given: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if given is not None and _SANE.fullmatch(given):
        return given
    return uuid.uuid4().hex


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The id for a request with these (ASGI) headers."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            try:
                return accepted_or_new(value.decode("ascii"))
            except UnicodeDecodeError:
                break
    return accepted_or_new(None)
