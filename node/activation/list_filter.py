"""Activations listed with a count and filtered (issue 17 item 4): by side, by the day of
the incident (`event_ts` in the node's time zone), by state (the activation's overall
state, as both sides see it) and by an affected discipline of its request.

A node holds few activations (tens a year), and the overall state is computed from the
legs, so the list is read whole (newest first, `views.list_activations`) and filtered
here; the page and the API then cut their page from it, and the count is of the filtered
list.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import Field
from sqlalchemy import select

from node.activation import views
from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.models import ActivationSummary
from node.activation.rows import A, ActRow
from node.records.list_filters import DateRange
from protocol.vocabulary import ActivationState, Discipline

__all__ = ["ActivationFilter", "filtered"]

_ALL = 1_000_000


class ActivationFilter(DateRange):
    side: Side | None = Field(default=None, description="in: asked of us; out: our requests")
    status: ActivationState | None = Field(default=None, description="Overall state")
    discipline: Discipline | None = Field(default=None,
                                          description="Affected personnel of this discipline")


def _day(ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, zone).date()


async def filtered(db: Db, ctx: ActivationContext, zone: ZoneInfo, *, side: Side | None = None,
                   since: date | None = None, until: date | None = None,
                   status: ActivationState | None = None,
                   discipline: Discipline | None = None) -> list[ActivationSummary]:
    items = await views.list_activations(db, ctx, side, _ALL)
    if discipline is not None:
        q = select(A)
        if side is not None:
            q = q.where(A.c.side == side.value)
        hit = set()
        for row in (await db.execute(q)).all():
            act = ActRow.of(row)
            if discipline in act.request.affected:
                hit.add((act.activation_id, act.requester))
        items = [a for a in items if (a.activation_id, a.requester) in hit]
    if status is not None:
        items = [a for a in items if a.state == status]
    if since is not None:
        items = [a for a in items if _day(a.event_ts, zone) >= since]
    if until is not None:
        items = [a for a in items if _day(a.event_ts, zone) <= until]
    return items
