"""SenSeeAct's sync controller (``/sync/project/{project}/...``) as the seed documents it:
``ROUTES`` for the app, ``PATHS`` for ``/openapi.json`` (its
security schemes, ``authToken`` and ``bearer``, are the document's own)."""

from __future__ import annotations

from starlette.routing import Route

from gateway.rest.senseeact import endpoints
from gateway.rest.senseeact.openapi import PATHS

ROUTES = [
    Route(f"/sync/project/{{project}}/{name}", handler, methods=["POST"])
    for name, handler in {
        "read": endpoints.read,
        "write": endpoints.write,
        "get-read-stats": endpoints.get_read_stats,
        "get-progress": endpoints.get_progress,
        "watch": endpoints.watch,
        "register-push": endpoints.register_push,
        "unregister-push": endpoints.unregister_push,
    }.items()
]

__all__ = ["PATHS", "ROUTES"]
