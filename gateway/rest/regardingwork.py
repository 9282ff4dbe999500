"""RegardingWork's ``GET /api/sync/status`` over the gateway's sync status report.

RegardingWork has one project per deployment and its request names none. The project is, in
this order: the ``X-Project`` header, the ``GATEWAY_REST_DEFAULT_PROJECT`` setting, else the one
project the caller is a member of (``BAD_USER_INPUT`` when none or several). Statuses and
conflict types are RegardingWork's lower-case words; ``sync_lag`` is its text ("2 minutes");
conflicts list the writers' device types (their deviceId when they never reported one) and the
affected sessions (records).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.rest import query
from gateway.rest.http import JSON, caller, endpoint, services_of
from gateway.sync import status as domain
from gateway.sync.devices import DeviceInfo

PREFERENCES_TABLE = "preferences"  # its last change is RegardingWork's preferences_updated


def _device(d: DeviceInfo) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "device_type": d.device_type,
        "last_seen": query.zulu(d.last_seen),
        "sync_status": d.status.value.lower(),
        "version": d.version,
        # Sessions waiting on the device to be sent (what it reports as its pendingUp).
        "sessions_pending": d.pending_up or 0,
    }


@endpoint
async def sync_status(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    settings = services.settings
    project = request.headers.get("x-project") or settings.rest_default_project
    include_devices = query.boolean(request, "include_devices", True)
    options = domain.ReportOptions(
        # Devices are always loaded: conflicts name the writers by their device type.
        include_devices=True,
        check_conflicts=query.boolean(request, "check_conflicts", False),
        last_hours=query.integer(request, "last_hours", 24),
    )
    report = await domain.sync_status(
        services.db,
        principal,
        project,
        None,
        options,
        rules=services.status_feeds.rules,
        support_contact=settings.support_contact,
    )
    devices = report.devices or []
    types = {d.device_id: d.device_type or d.device_id for d in devices}
    summary = report.data_summary
    preferences = next((t for t in summary.tables if t.table == PREFERENCES_TABLE), None)
    body: dict[str, Any] = {
        "sync_status": report.sync_status.value.lower(),
        "last_sync": query.zulu(report.last_sync),
        "sync_lag": report.sync_lag.text if report.sync_lag else None,
        "total_devices": report.total_devices,
        "active_devices": report.active_devices,
        "pending_syncs": report.pending_syncs,
    }
    if include_devices:
        body["devices"] = [_device(d) for d in devices]
    body["data_summary"] = {
        "total_sessions": summary.total_actions,
        "unsynced_sessions": summary.unsynced_actions,
        "last_session": query.zulu(summary.last_action),
        "preferences_updated": query.zulu(preferences.last_change if preferences else None),
        "conflicts_detected": summary.conflicts_detected,
    }
    body["recommendations"] = report.recommendations
    if report.conflicts is not None and report.conflict_resolution is not None:
        body["conflicts"] = [
            {
                "type": c.type.value.lower(),
                "description": c.description,
                "affected_sessions": c.affected_records,
                "resolution": c.resolution.lower(),
                "devices": list(dict.fromkeys(types.get(d, d) for d in c.devices)),
            }
            for c in report.conflicts
        ]
        resolution = report.conflict_resolution
        body["conflict_resolution"] = {
            "auto_resolvable": resolution.auto_resolvable,
            "recommended_action": resolution.recommended_action,
            "support_contact": resolution.support_contact,
        }
    return JSON(body)


ROUTES = [Route("/api/sync/status", sync_status, methods=["GET"])]

_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATUS = {
    "type": "object",
    "required": [
        "sync_status",
        "last_sync",
        "sync_lag",
        "total_devices",
        "active_devices",
        "pending_syncs",
        "data_summary",
        "recommendations",
    ],
    "properties": {
        "sync_status": {"type": "string", "enum": ["healthy", "delayed", "conflicts", "offline"]},
        "last_sync": _TIME,
        "sync_lag": {"type": ["string", "null"], "example": "2 minutes"},
        "total_devices": {"type": "integer"},
        "active_devices": {"type": "integer"},
        "pending_syncs": {"type": "integer"},
        "devices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["device_id", "device_type", "last_seen", "sync_status"],
                "properties": {
                    "device_id": {"type": "string"},
                    "device_type": {"type": ["string", "null"]},
                    "last_seen": {"type": "string", "format": "date-time"},
                    "sync_status": {
                        "type": "string",
                        "enum": ["up_to_date", "stale", "pending", "offline"],
                    },
                    "version": {"type": ["string", "null"]},
                    "sessions_pending": {"type": "integer"},
                },
            },
        },
        "data_summary": {
            "type": "object",
            "properties": {
                "total_sessions": {"type": "integer"},
                "unsynced_sessions": {"type": "integer"},
                "last_session": _TIME,
                "preferences_updated": _TIME,
                "conflicts_detected": {"type": "integer"},
            },
        },
        "recommendations": {"type": "array", "items": {"type": "string"}},
        "conflicts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": ["concurrent_update", "update_after_delete", "session_overlap"],
                    },
                    "description": {"type": "string"},
                    "affected_sessions": {"type": "array", "items": {"type": "string"}},
                    "resolution": {
                        "type": "string",
                        "enum": ["kept_latest", "manual_review_required"],
                    },
                    "devices": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "conflict_resolution": {
            "type": "object",
            "properties": {
                "auto_resolvable": {"type": "boolean"},
                "recommended_action": {"type": "string"},
                "support_contact": {"type": ["string", "null"]},
            },
        },
    },
}
PATHS: dict[str, Any] = {
    "/api/sync/status": {
        "get": {
            "operationId": "regardingworkSyncStatus",
            "tags": ["RegardingWork"],
            "summary": "RegardingWork's sync status across your devices, with conflicts",
            "security": [{"bearer": []}, {"authToken": []}],
            "parameters": [
                {
                    "name": "include_devices",
                    "in": "query",
                    "description": "List the devices (default true).",
                    "schema": {"type": "boolean"},
                },
                {
                    "name": "check_conflicts",
                    "in": "query",
                    "description": "List the open conflicts (default false).",
                    "schema": {"type": "boolean"},
                },
                {
                    "name": "last_hours",
                    "in": "query",
                    "description": "How recently a device must have been seen to be active "
                    "(hours, 1 or more; default 24).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": query.MAX_INT},
                },
                {
                    "name": "X-Project",
                    "in": "header",
                    "description": "The project (omitted: GATEWAY_REST_DEFAULT_PROJECT, else "
                    "your only project).",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The sync status report.",
                    "content": {"application/json": {"schema": _STATUS}},
                },
                **{
                    status: {"$ref": f"#/components/responses/Error{status}"}
                    for status in ("400", "401", "403", "404")
                },
            },
        }
    }
}
SCHEMAS: dict[str, Any] = {}
