"""Team follow-ups (and the follow-ups API) paged with a count and filtered by due day,
status and discipline (issue 17 item 4).

`where` builds the conditions over `node.records.followups`' select (follow-up, its
encounter, its owner): `since` / `until` on the due day, `status` on the effective status
(`overdue` is open and due before today, `open` is open and not yet overdue), `discipline`
on the recipient's, `due_only` (the API's) open and due today or earlier. The team page
defaults to the follow-ups still to do (`active`: open or overdue); `any` shows every one.
The order is the list's own: earliest due first. A peer supporter asking for the team's
is refused (`forbidden`, audited) as `list_follow_ups` refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import Field
from sqlalchemy import ColumnElement, func, select

from node.core.access import Principal
from node.core.context import NodeContext
from node.core.schemas import FollowUpOut
from node.core.vocabulary import FollowUpStatus, RecipientDiscipline, Role
from node.records.encounter_paging import status_where
from node.records.followups import _SELECT, E, F, U, _out, _refuse
from node.records.list_filters import DateRange

__all__ = ["TeamFilter", "page_follow_ups", "where"]


class TeamFilter(DateRange):
    status: Literal["active", "any"] | FollowUpStatus = Field(
        default="active", description="active: open or overdue; any: every status")
    discipline: RecipientDiscipline | None = None


def where(ctx: NodeContext, *, since: date | None = None, until: date | None = None,
          status: str | FollowUpStatus | None = None,
          discipline: RecipientDiscipline | None = None,
          due_only: bool = False) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(F.c.due_on >= since)
    if until is not None:
        out.append(F.c.due_on <= until)
    if status == "active":
        out.append(F.c.status == FollowUpStatus.OPEN.value)
    elif isinstance(status, FollowUpStatus):
        out.append(status_where(status, ctx.today()))
    if discipline is not None:
        out.append(E.c.recipient_discipline == discipline.value)
    if due_only:
        out.append(F.c.status == FollowUpStatus.OPEN.value)
        out.append(F.c.due_on <= ctx.today())
    return out


async def page_follow_ups(ctx: NodeContext, p: Principal, scope: str,
                          conditions: Sequence[ColumnElement[bool]], limit: int,
                          offset: int) -> tuple[list[FollowUpOut], int]:
    """One page of the caller's (or their team's) follow-ups matching `conditions`, and
    how many match in all."""
    if scope == "team":
        if p.role is not Role.COORDINATOR:
            raise await _refuse(ctx, p, "team", "scope", "only coordinators see the team's")
        mine: ColumnElement[bool] = U.c.team == p.team
    else:
        mine = F.c.owner_id == p.user_id
    stmt = _SELECT.where(mine, *conditions)
    count = select(func.count()).select_from(stmt.subquery())
    async with ctx.db.read() as conn:
        total = int((await conn.execute(count)).scalar_one())
        rows = (await conn.execute(stmt.order_by(F.c.due_on, F.c.id).limit(limit)
                                   .offset(offset))).mappings().all()
    return [_out(r, ctx) for r in rows], total


