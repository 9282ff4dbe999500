"""``node(id)`` and ``nodes(ids)``: any cacheable object by its global id (``globalids.py``).

Each type's lookup is its domain getter, under the access rules of the fields that list the
object. An id of something the caller may not see answers ``null``, exactly like an id of
nothing, a malformed id or one of an unknown type: the answer never tells whether an object
the caller may not see exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import strawberry

from gateway.errors import BadUserInput, Forbidden, LimitExceeded, NotFound, TableNotAllowed
from gateway.graphql.access import AccessGrant
from gateway.graphql.context import Info
from gateway.graphql.devices import Device, health_rules
from gateway.graphql.globalids import Node, decode
from gateway.graphql.history import SyncEvent
from gateway.graphql.projects import Project, Table
from gateway.graphql.push import PushRegistration
from gateway.graphql.records import Record
from gateway.push import registrations
from gateway.sync import devices, grants, history, projects, records

# What the domain raises for an object the caller may not see or that is not there; every
# other error (the caller's token, the database) is reported as usual.
_NOT_THERE = (Forbidden, NotFound, BadUserInput, TableNotAllowed)

Lookup = Callable[[Info, list[Any]], Awaitable[Node | None]]


async def _project(info: Info, key: list[Any]) -> Node | None:
    [code] = key
    found = await projects.list_projects(info.context.db, info.context.principal, [code])
    return Project.from_domain(found[0]) if found else None


async def _table(info: Info, key: list[Any]) -> Node | None:
    code, name = key
    found = await projects.list_projects(info.context.db, info.context.principal, [code])
    tables = [t for p in found for t in p.tables if t.spec.name == name]
    return Table.from_domain(code, tables[0]) if tables else None


async def _device(info: Info, key: list[Any]) -> Node | None:
    project, owner, device_id = key
    found = await devices.get_device(
        info.context.db,
        info.context.principal,
        project,
        device_id,
        user=owner,
        rules=health_rules(info),
    )
    return Device.from_domain(found) if found else None


async def _record(info: Info, key: list[Any]) -> Node | None:
    project, table, user, record_id = key
    found = await records.get_record(
        info.context.db, info.context.principal, project, table, user, record_id
    )
    return Record.from_domain(project, found) if found else None


async def _sync_event(info: Info, key: list[Any]) -> Node | None:
    [event_id] = key
    found = await history.get_event(info.context.db, info.context.principal, event_id)
    return SyncEvent.from_domain(found) if found else None


async def _grant(info: Info, key: list[Any]) -> Node | None:
    project, user, grantee = key
    found = await grants.get_grant(info.context.db, info.context.principal, project, user, grantee)
    return AccessGrant.from_domain(found) if found else None


async def _push_registration(info: Info, key: list[Any]) -> Node | None:
    project, user, device_id = key
    found = await registrations.get_registration(
        info.context.db, info.context.principal, project, user=user, device_id=device_id
    )
    return PushRegistration.from_domain(found) if found else None


# Per type name: the types of its key's parts, and its lookup.
LOOKUPS: dict[str, tuple[tuple[type, ...], Lookup]] = {
    "Project": ((str,), _project),
    "Table": ((str, str), _table),
    "Device": ((str, str, str), _device),
    "Record": ((str, str, str, str), _record),
    "SyncEvent": ((int,), _sync_event),
    "AccessGrant": ((str, str, str), _grant),
    "PushRegistration": ((str, str, str), _push_registration),
}


async def find_node(info: Info, global_id: str) -> Node | None:
    decoded = decode(global_id)
    if decoded is None:
        return None
    type_name, key = decoded
    known = LOOKUPS.get(type_name)
    if known is None:
        return None
    shape, lookup = known
    if len(key) != len(shape) or any(type(p) is not t for p, t in zip(key, shape, strict=True)):
        return None
    if "" in key:  # no key part is empty (an empty user would mean the caller)
        return None
    try:
        return await lookup(info, key)
    except _NOT_THERE:
        return None


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object that has a global `id` (a Node), fetched again by that id, as "
        "Relay's refetching and client caches do. Null when there is no such object, when you "
        "may not see it, or when the id is not one the gateway handed out."
    )
    async def node(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="An `id` from an earlier answer.")
        ],
    ) -> Node | None:
        info.context.principal  # noqa: B018 - anonymous callers are refused, whatever the id
        return await find_node(info, id)

    @strawberry.field(
        description="Several objects by their global ids, in the order given: each one as "
        "`node(id:)` would answer it, null where it would be null. At most "
        "GATEWAY_MAX_NODE_IDS ids (default 100); more is LIMIT_EXCEEDED."
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(description="`id`s from earlier answers; repeats are allowed."),
        ],
    ) -> list[Node | None]:
        info.context.principal  # noqa: B018
        most = info.context.services.settings.max_node_ids
        if len(ids) > most:
            raise LimitExceeded(
                f"nodes looks up at most {most} ids at once, not {len(ids)}",
                limit="nodeIds",
                max=most,
            )
        found: dict[str, Node | None] = {}
        for global_id in ids:
            if global_id not in found:
                found[global_id] = await find_node(info, global_id)
        return [found[global_id] for global_id in ids]
