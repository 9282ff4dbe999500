"""What GraphiQL opens with: an example operation that runs on the demo data, and how to get
and send a token, in place of Strawberry's generic welcome text; and that it keeps no token:
Strawberry's page has GraphiQL save the Headers pane in the browser's localStorage, where a
bearer token to health data would outlive the session and be readable by any script of the
origin. Here the pane lasts as long as the page."""

from __future__ import annotations

import re

#: Put in a JavaScript template literal: it must hold no backtick and no "${".
EXAMPLE_OPERATION = """\
# Sync Gateway: one GraphQL endpoint to sync
# offline-first devices.
#
# Reading and writing data needs a token (the
# schema's documentation does not). Print one on
# the gateway's machine (roles: PATIENT,
# PROFESSIONAL, ADMIN):
#
#     gateway token --user admin --role ADMIN
#
# ('gateway serve --demo' prints an admin token
# when GATEWAY_JWT_SECRET is not set.) Then open
# the Headers pane below and write:
#
#     {"Authorization": "Bearer <the token>"}
#
# Run this example with Ctrl-Enter or the run
# button: the demo project's devices, failed sync
# runs and open conflicts ('gateway demo' loads
# it). Subscriptions (databaseActions,
# deviceStatusChanged, ...) use the same header.

query DemoOverview {
  me {
    id
    role
  }
  devices(project: "demo") {
    deviceId
    owner
    status
    pendingUp
    pendingDown
    lastSeen
  }
  projectSyncRuns(project: "demo", status: FAILED) {
    data {
      id
      errorCode
      errorMessage
    }
  }
  conflicts(project: "demo", status: OPEN) {
    edges {
      node {
        table
        key
        type
        devices
      }
    }
  }
}
"""

_EXAMPLE_QUERY = re.compile(r"(const EXAMPLE_QUERY = `)(.*?)(`;)", flags=re.DOTALL)
_PERSIST_HEADERS = re.compile(r"shouldPersistHeaders:\s*true")


def with_example(html: str) -> str:
    """Strawberry's GraphiQL page with this gateway's example as its default operation, and
    its Headers pane not saved."""
    page, found = _EXAMPLE_QUERY.subn(
        lambda m: m.group(1) + EXAMPLE_OPERATION + m.group(3), html, count=1
    )
    if found != 1:
        raise RuntimeError("Strawberry's GraphiQL page no longer has its EXAMPLE_QUERY")
    page, found = _PERSIST_HEADERS.subn("shouldPersistHeaders: false", page)
    if found != 1:
        raise RuntimeError("Strawberry's GraphiQL page no longer sets shouldPersistHeaders")
    return page
