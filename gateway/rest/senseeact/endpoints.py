"""SenSeeAct's sync controller, ``POST /sync/project/{project}/...``, over the domain layer.

What a reader gets differs from GraphQL in two ways, both for the seed's progress (see
gateway/sync/seed_progress.py): actions come unmerged and a delivered action's ``order`` is its
log id, so that the ``{table, time, order}`` of the last action a client received per table is
exactly where its next read goes on. Tables without progress replay their whole log (no
snapshot), as SenSeeAct does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.principal import Principal
from gateway.errors import BadUserInput, NotFound
from gateway.live.stream import stream_actions
from gateway.push import registrations as push
from gateway.rest.http import JSON, caller, endpoint, services_of
from gateway.rest.senseeact import parse
from gateway.services import Services
from gateway.sync import reader, writer
from gateway.sync.actions import DeliveredAction
from gateway.sync.seed_progress import progress_tokens
from gateway.sync.validation import DataLimits


def _action(a: DeliveredAction) -> dict[str, Any]:
    return {
        "table": a.table,
        "user": a.user,
        "action": a.action.value,
        "recordId": a.record_id,
        "jsonData": a.json_data,
        "sampleTime": a.sample_time,
        "time": a.time,
        "order": a.position,  # the log id: where a read goes on after it (seed_progress.py)
        "source": a.source,
        "author": a.author,
    }


async def _read_request(
    request: Request, services: Services, principal: Principal, content: dict[str, Any]
) -> reader.ReadRequest:
    project = request.path_params["project"]
    user = parse.user_param(request)
    max_count = parse.integer(content, "maxCount", 0, parse.INT32_MAX) or 0
    max_time = parse.integer(content, "maxTime", 0, 2**63 - 1)
    read_filter = parse.read_filter(content)
    given = parse.progress(content)
    device = parse.device_param(request, content)
    tokens = await progress_tokens(services.db, principal, project, user, given)
    return reader.ReadRequest(
        project=project,
        user=user,
        device_id=device,
        progress=tokens,
        filter=read_filter,
        max_count=max_count,
        max_time=max_time,
        snapshot=False,
        merge=False,
    )


@endpoint
async def read(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    content = await parse.body(request)
    batch = await reader.read_actions(
        services.db,
        principal,
        await _read_request(request, services, principal, content),
        max_batch=services.settings.max_read_batch,
        events=services,
        max_bytes=services.settings.max_response_bytes,
    )
    return JSON([_action(a) for a in batch.actions])


@endpoint
async def get_read_stats(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    content = await parse.body(request)
    read_request = await _read_request(request, services, principal, content)
    stats = await reader.read_stats(services.db, principal, read_request)
    given = parse.progress(content)
    progress = [
        {"table": table, "user": None, "time": time, "order": order}
        for table, (time, order) in given.items()
    ]
    return JSON(
        {"progress": progress or None, "count": stats.count, "latestTime": stats.latest_time}
    )


@endpoint
async def get_progress(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    content = await parse.body(request)
    marks = await writer.write_progress(
        services.db,
        principal,
        request.path_params["project"],
        parse.user_param(request),
        parse.device_param(request, content),
        parse.names(content, "includeTables"),
        parse.names(content, "excludeTables"),
    )
    # SenSeeAct lists only the tables something was written to.
    return JSON(
        [
            {"table": m.table, "user": m.user, "time": m.time, "order": m.order}
            for m in marks
            if m.time is not None
        ]
    )


@endpoint
async def write(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    settings = services.settings
    content = await parse.body(request)
    await writer.write_actions(
        services.db,
        principal,
        writer.WriteRequest(
            project=request.path_params["project"],
            actions=parse.actions(content),
            user=parse.user_param(request),
            device_id=parse.device_param(request, content),
            include_tables=parse.names(content, "includeTables"),
            exclude_tables=parse.names(content, "excludeTables"),
        ),
        max_batch=settings.max_write_batch,
        events=services,
        limits=DataLimits(settings.max_record_bytes, settings.max_json_depth),
    )
    return Response(status_code=200)  # the seed's answer is empty


@endpoint
async def register_push(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    content = await parse.body(request)
    token, device = content.get("fcmToken"), content.get("deviceId")
    if not isinstance(token, str) or not token:
        raise BadUserInput("fcmToken is required", field="fcmToken")
    if not isinstance(device, str) or not device:
        raise BadUserInput("deviceId is required", field="deviceId")
    await push.register_push(
        services.db,
        principal,
        request.path_params["project"],
        token=token,
        device_id=device,
        user=parse.user_param(request),
        include_tables=parse.names(content, "includeTables"),
        exclude_tables=parse.names(content, "excludeTables"),
    )
    return Response(status_code=200)


@endpoint
async def unregister_push(request: Request) -> Response:
    principal = await caller(request)
    services = services_of(request)
    device = parse.device_param(request)
    if device is None:
        raise BadUserInput("deviceId is required", field="deviceId")
    await push.unregister_push(
        services.db,
        principal,
        request.path_params["project"],
        device_id=device,
        user=parse.user_param(request),
    )
    return Response(status_code=200)  # also when there was none, as SenSeeAct


@endpoint
async def watch(request: Request) -> Response:
    """The live stream's first batch, or TIMEOUT after GATEWAY_SENSEEACT_WATCH_SECONDS. It waits
    on the hub's wake-ups holding no database connection (see gateway/live/stream.py), and
    ends when the client disconnects."""
    principal = await caller(request)
    services = services_of(request)
    settings = services.settings
    content = await parse.body(request)
    watched = await _read_request(request, services, principal, content)
    stream = stream_actions(
        services.db,
        services.hub,
        principal,
        watched,
        max_batch=settings.max_read_batch,
        poll_seconds=settings.live_poll_seconds,
        history_seconds=settings.live_history_seconds,
        run_timeout_seconds=settings.sync_run_timeout_seconds,
        events=services,
        max_bytes=settings.max_response_bytes,
        metrics=services.metrics,
        replica_id=services.replica_id,
    )
    first = asyncio.ensure_future(_first(stream))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {first, gone},
            timeout=settings.senseeact_watch_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for task in (first, gone):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await stream.aclose()
    if first not in done:  # timed out, or the client left (it gets nothing then)
        return JSON({"resultCode": "TIMEOUT", "actions": None})
    try:
        batch = first.result()
    except NotFound as error:
        if error.details.get("reason") == "NO_DATA":
            return JSON({"resultCode": "NO_DATA", "actions": None})
        raise
    return JSON({"resultCode": "OK", "actions": [_action(a) for a in batch.actions]})


async def _first(stream: Any) -> reader.ReadBatch:
    batch: reader.ReadBatch = await anext(stream)
    return batch


async def _disconnected(request: Request) -> None:
    """Returns when the client hangs up (the body was read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
