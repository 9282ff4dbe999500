"""SenSeeAct's ``{table, time, order}`` read progress, mapped onto the log.

A SenSeeAct client keeps, per table, the ``time`` and ``order`` of the last action it read and
sends them back. Through the adapter, a delivered action's ``order`` is its log id (the
``position`` GraphQL shows) and its ``time`` the writer's, and reads deliver every action
unmerged in log order, so that pair names exactly the last action the client received:

- **Ours**: ``order`` is the id of an action of that user and table with that ``time``. The
  read goes on right after it in the log, ``(xid, id)``. Every action before it in the log that
  will ever be readable was readable when it was delivered (reads stop at the horizon, see
  horizon.py) and came in that read or an earlier one: nothing is lost, nothing repeated.
- **Foreign** (any other pair, e.g. SenSeeAct's own stored progress): the read starts just
  before the first action in the log whose ``(time, order)`` (the writer's) is after the given
  pair, and never above the lowest horizon a reader may see now. Every action whose writer's
  ``(time, order)`` is after the progress comes; actions logged after it with earlier times
  come too (possibly again). Nothing with a later time is lost; repeats are possible.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth.principal import Principal
from gateway.db import Database
from gateway.db.models import Action
from gateway.sync.cursor import Cursor, Position
from gateway.sync.horizon import lowest_possible
from gateway.sync.projects import open_user_data
from gateway.sync.selection import check_known


async def progress_tokens(
    db: Database,
    principal: Principal,
    project: str,
    user: str | None,
    given: Mapping[str, tuple[int, int]],
) -> dict[str, str]:
    """The seed's progress as the gateway's cursor tokens (a ``ReadRequest``'s progress)."""
    if not given:
        return {}
    async with db.session() as session:
        data = await open_user_data(session, principal, project, user)
        check_known(data.tables, given, "progress")
        ids = {name: data.tables[name].id for name in given}
        cursors = await cursors_of(session, data.project_id, data.user, ids, given)
    return {name: cursor.encode() for name, cursor in cursors.items()}


async def cursors_of(
    session: AsyncSession,
    project_id: int,
    user: str,
    table_ids: Mapping[str, int],
    given: Mapping[str, tuple[int, int]],
) -> dict[str, Cursor]:
    """Per table of ``given`` (name -> (time, order)), the cursor a read continues from."""
    out: dict[str, Cursor] = {}
    for name, (time, order) in given.items():
        table_id = table_ids[name]
        xid = await session.scalar(
            select(Action.xid).where(
                Action.id == order,
                Action.project_id == project_id,
                Action.user_id == user,
                Action.table_id == table_id,
                Action.time == time,
            )
        )
        if xid is not None:
            out[name] = Cursor(Position(int(xid), order), time, order)
            continue
        first = (
            await session.execute(
                select(Action.xid, Action.id)
                .where(
                    Action.project_id == project_id,
                    Action.user_id == user,
                    Action.table_id == table_id,
                    tuple_(Action.time, Action.action_order) > tuple_(time, order),
                )
                .order_by(Action.xid, Action.id)
                .limit(1)
            )
        ).first()
        floor = await lowest_possible(session)
        at = floor if first is None else min(Position(first.xid, first.id - 1), floor)
        out[name] = Cursor(at, time, order)
    return out
