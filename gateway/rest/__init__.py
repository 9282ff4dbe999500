"""The reference APIs' own REST paths (issue 16), served over the same domain layer as GraphQL.

Each adapter is a module exposing ``ROUTES`` (Starlette routes with the seed's paths) and
``PATHS`` (their OpenAPI path items; ``SCHEMAS`` for shared components, optionally);
``ADAPTERS`` lists them for the app and for ``/openapi.json`` (``openapi``, itself listed so the
app serves it). Shared request handling (the caller, errors as HTTP statuses, JSON) is in
``gateway/rest/http.py``.
"""

from __future__ import annotations

from types import ModuleType

from gateway.rest import census, cspro, openapi, regardingwork, senseeact

ADAPTERS: list[ModuleType] = [senseeact, cspro, regardingwork, census, openapi]
