"""Everything checked before anything is written: each action on its own (table, user, id,
times, labels, jsonData), then against the log (a retried action is a duplicate, the same
identity with other content a conflict). Every problem is listed, by index, in one refusal."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.dialect import in_values, is_postgresql
from gateway.db.models import Action
from gateway.errors import Conflict, GatewayError, LimitExceeded, TableNotAllowed, ValidationFailed
from gateway.sync.actions import IncomingAction, InvalidAction
from gateway.sync.selection import CatalogTable
from gateway.sync.validation import (
    ActionProblem,
    ActionTooLarge,
    DataLimits,
    check_labels,
    check_order,
    check_time,
    normalize_record_id,
    parse_data,
)
from gateway.sync.writer.model import Checked, by_table, chunks, parsed


def check_each(
    actions: Sequence[IncomingAction],
    catalog: dict[str, CatalogTable],
    allowed: dict[str, CatalogTable],
    user: str,
    limits: DataLimits,
) -> list[Checked]:
    checked: list[Checked] = []
    problems: list[InvalidAction] = []
    for index, action in enumerate(actions):
        table = allowed.get(action.table)
        if table is None:
            reason = (
                f"table {action.table!r} is excluded by includeTables/excludeTables"
                if action.table in catalog
                else f"table {action.table!r} does not exist in the project"
            )
            problems.append(InvalidAction(index, TableNotAllowed.code, reason))
            continue
        try:
            if action.user != user:
                raise ActionProblem(f"user {action.user!r} differs from the target user {user!r}")
            record_id = normalize_record_id(action.record_id)
            check_time(action.time)
            check_order(action.order)
            check_labels(action.source, action.author)
            data = parse_data(action.action, action.json_data, table.spec, record_id, user, limits)
        except ActionTooLarge as problem:
            problems.append(InvalidAction(index, LimitExceeded.code, str(problem)))
            continue
        except ActionProblem as problem:
            problems.append(InvalidAction(index, ValidationFailed.code, str(problem)))
            continue
        checked.append(Checked(index, table, record_id, action.action, data, action))
    refuse(problems)
    return checked


def refuse(problems: list[InvalidAction]) -> None:
    if not problems:
        return
    error: type[GatewayError] = (
        TableNotAllowed
        if any(p.code == TableNotAllowed.code for p in problems)
        else Conflict
        if all(p.code == Conflict.code for p in problems)
        else LimitExceeded
        if all(p.code == LimitExceeded.code for p in problems)
        else ValidationFailed
    )
    listed = "; ".join(f"#{p.index}: {p.reason}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    # A refused conflict carries the record to rebase on; the first one also at the top.
    current = [
        p.detail["currentRecord"] for p in problems if p.detail and "currentRecord" in p.detail
    ]
    raise error(
        f"{len(problems)} invalid action(s), nothing was written: {listed}{more}",
        invalidActions=[p.to_json() for p in problems],
        **({"currentRecord": current[0]} if current else {}),
    )


# PostgreSQL: the batch's identities in one statement, each looked up on its own (LATERAL)
# through the identity's unique index, the only one that starts with the table (the table
# determines the project): without statistics the planner has no other choice to get wrong,
# and the lookup costs the same however long the log grows.
_STORED = text("""
SELECT a.table_id, a.record_id, a.time, a.action_order, a.action, a.json_data, a.author
FROM unnest(CAST(:tables AS integer[]), CAST(:records AS varchar[]),
            CAST(:times AS bigint[]), CAST(:orders AS integer[]))
     AS k(table_id, record_id, time, action_order)
CROSS JOIN LATERAL (
    SELECT * FROM actions
    WHERE table_id = k.table_id AND user_id = :user_id AND record_id = k.record_id
      AND time = k.time AND action_order = k.action_order
    OFFSET 0
) AS a
""")


async def _stored(
    session: AsyncSession, project_id: int, user: str, checked: list[Checked]
) -> dict[tuple[int, str, int, int], tuple[str, Any, str | None]]:
    """The content (action, data, author) of those of the batch's identities already logged."""
    stored: dict[tuple[int, str, int, int], tuple[str, Any, str | None]] = {}
    if not checked:
        return stored
    if is_postgresql(session):
        keys = sorted({c.identity for c in checked})
        if keys:
            tables, records, times, orders = (list(column) for column in zip(*keys, strict=True))
            rows = await session.execute(
                _STORED,
                {"user_id": user, "tables": tables, "records": records, "times": times,
                 "orders": orders},
            )  # fmt: skip
            for t, r, time, order, action, json_data, author in rows:
                stored[(t, r, time, order)] = (action, parsed(json_data), author)
        return stored
    for table_id, record_ids in by_table(c.record for c in checked).items():
        for chunk in chunks(record_ids):
            rows = await session.execute(
                select(
                    Action.record_id,
                    Action.time,
                    Action.action_order,
                    Action.action,
                    Action.json_data,
                    Action.author,
                ).where(
                    Action.project_id == project_id,
                    Action.user_id == user,
                    Action.table_id == table_id,
                    in_values(session, Action.record_id, chunk),
                )
            )
            for r in rows:
                content = (r.action, parsed(r.json_data), r.author)
                stored[(table_id, r.record_id, r.time, r.action_order)] = content
    return stored


async def split_duplicates(
    session: AsyncSession,
    project_id: int,
    user: str,
    checked: list[Checked],
    existing: Collection[tuple[int, str]],
) -> tuple[list[Checked], list[int]]:
    """Actions not yet in the log, and the indexes of those that are (a retried batch). Only
    actions of ``existing`` records are looked up: every action logged made or changed its
    record, and records stay (a DELETE marks them), so a new record's actions are all new."""
    logged = [c for c in checked if c.record in existing]
    stored = await _stored(session, project_id, user, logged)
    new: list[Checked] = []
    duplicates: list[int] = []
    conflicts: list[InvalidAction] = []
    for c in checked:
        content = (c.action.value, c.data, c.source.author)
        earlier = stored.get(c.identity)
        if earlier is None:
            stored[c.identity] = content
            new.append(c)
        elif earlier == content:
            duplicates.append(c.index)
        else:
            conflicts.append(
                InvalidAction(
                    c.index,
                    Conflict.code,
                    "an action with this table, recordId, time and order was already written "
                    "with different content",
                )
            )
    refuse(conflicts)
    return new, duplicates
