"""Filters and reads of the audit-log page: date range, actor, action.

`actor` is a username (or a user id); an unknown one is refused (`invalid_input`, field
`actor`) rather than answered with an empty list that looks like "this person did
nothing". `action` is an exact action (`encounter.amend`) or a prefix ending in a dot
(`encounter.`: every encounter action). Rows come newest first on the page (`seq`
descending) and oldest first in exports (the chain's own order, so an export can be
re-linked by `prev_hash`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnElement, and_, func, select, true

from node.core.context import NodeContext
from node.core.db import AuditEntry, User, table_of
from node.core.errors import Code, NodeError
from node.records.list_filters import DateRange, day_bounds

__all__ = ["AuditFilter", "actions", "condition", "count", "newest_first", "oldest_first",
           "usernames"]

A = table_of(AuditEntry)
U = table_of(User)
_BATCH = 1000


class AuditFilter(DateRange):
    actor: str | None = Field(default=None, max_length=40, pattern=r"^[a-z0-9][a-z0-9._-]*$",
                              description="Username or user id")
    action: str | None = Field(default=None, max_length=40, pattern=r"^[a-z_][a-z0-9_.]*$",
                               description="An action, or a prefix ending in a dot")


async def condition(ctx: NodeContext, f: AuditFilter) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = [true()]
    start, end = day_bounds(f.since, f.until, ctx.zone)
    if start is not None:
        parts.append(A.c.ts >= start)
    if end is not None:
        parts.append(A.c.ts < end)
    if f.actor:
        parts.append(A.c.actor == await _actor_id(ctx, f.actor))
    if f.action:
        parts.append(A.c.action.startswith(f.action, autoescape=True) if f.action.endswith(".")
                     else A.c.action == f.action)
    return and_(*parts)


async def _actor_id(ctx: NodeContext, actor: str) -> str:
    try:
        return str(uuid.UUID(actor))
    except ValueError:
        pass
    async with ctx.db.read() as conn:
        uid = (await conn.execute(select(U.c.id).where(U.c.username == actor))).scalar()
    if uid is None:
        raise NodeError(Code.INVALID_INPUT, "actor: no user with that name", "actor")
    return str(uid)


async def count(ctx: NodeContext, where: ColumnElement[bool]) -> int:
    async with ctx.db.read() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(A).where(where))).scalar_one())


async def newest_first(ctx: NodeContext, where: ColumnElement[bool], limit: int,
                       offset: int) -> list[Mapping[str, Any]]:
    async with ctx.db.read() as conn:
        return list((await conn.execute(
            select(A).where(where).order_by(A.c.seq.desc()).limit(limit).offset(offset)
        )).mappings().all())


async def oldest_first(ctx: NodeContext,
                       where: ColumnElement[bool]) -> AsyncIterator[list[Mapping[str, Any]]]:
    """Every matching row in chain order, in batches (keyset on `seq`)."""
    last = 0
    while True:
        async with ctx.db.read() as conn:
            rows = list((await conn.execute(
                select(A).where(where, A.c.seq > last).order_by(A.c.seq).limit(_BATCH)
            )).mappings().all())
        if not rows:
            return
        yield rows
        last = rows[-1]["seq"]


async def usernames(ctx: NodeContext) -> dict[str, str]:
    """User id (as the audit log writes it) -> username."""
    async with ctx.db.read() as conn:
        return {str(r.id): r.username for r in await conn.execute(select(U.c.id, U.c.username))}


async def actions(ctx: NodeContext) -> list[str]:
    """The actions the log holds, for the filter's choices."""
    async with ctx.db.read() as conn:
        return sorted(a for (a,) in await conn.execute(select(A.c.action).distinct()))
