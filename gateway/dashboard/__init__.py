"""The operators' dashboard at ``/dashboard`` (``GATEWAY_DASHBOARD``): one static page whose
scripts use the gateway's own GraphQL API, so it shows only what the token it is given may see.

The page and its assets are served from this package (no CDN: it works offline). Its
Content-Security-Policy allows nothing but this gateway: scripts and styles from its own files
(no inline code at all), and connections (fetch and WebSockets) to its own origin.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

DASHBOARD_PATH = "/dashboard"
#: The page links its assets relatively ("dashboard-assets/..."), so that it also works under
#: a path prefix.
ASSETS_PATH = "/dashboard-assets"
ASSETS_DIR = Path(__file__).parent / "static"
PAGE = Path(__file__).parent / "index.html"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def dashboard_routes() -> list[BaseRoute]:
    html = PAGE.read_text(encoding="utf-8")

    async def page(_: Request) -> Response:
        # no-cache: a browser revalidates, so an upgraded gateway never runs an old page.
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}
        return HTMLResponse(html, headers=headers)

    return [
        Route(DASHBOARD_PATH, page, methods=["GET", "HEAD"]),
        Mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR)),
    ]
