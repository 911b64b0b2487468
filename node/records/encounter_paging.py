"""Paging for "My encounters": a page of the supporter's own encounters, newest first, with
the count that says where the page sits ("1-50 of 83") and links to the neighbours.

The list used to stop at the latest 50 without a word; a supporter with 83 encounters could
not reach the other 33. Pages are numbered from 1 (`?page=2`); a page past the end shows the
last one. The count is one indexed read of the supporter's own rows (the same scope as the
list: `encounters.created_by`), so it reveals nothing the list does not.

Filters (issue 17 item 4; `node.records.list_filters`): `since` / `until` on the day the
encounter occurred, `status` on the follow-up's effective status (`none`, `open`,
`overdue` computed against the clock, `done`, `handed_off`, `transferred`) and
`discipline` on the recipient's. The count is of the filtered rows, so "1–50 of 12" never
happens: a page says where it sits among the rows that match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import Field
from sqlalchemy import ColumnElement, and_, func, select

from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, FollowUp, User, table_of
from node.core.errors import Code, NodeError
from node.core.vocabulary import FollowUpStatus, RecipientDiscipline
from node.records.list_filters import DateRange, day_bounds

__all__ = ["PAGE_SIZE", "EncounterFilter", "Page", "count_encounters",
           "encounter_where", "page_of", "requested_page", "status_where"]

PAGE_SIZE = 50
_E = table_of(Encounter)


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None

    @property
    def summary(self) -> str:
        """Like "1–50 of 83" (an en dash); "None yet" when there is nothing."""
        if self.total == 0:
            return "None yet"
        return f"{self.first}–{self.last} of {self.total}"


def requested_page(query: Mapping[str, str]) -> int:
    """The `page` parameter (default 1); anything but a whole number from 1 is refused."""
    raw = query.get("page", "1")
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        raise NodeError(Code.INVALID_INPUT, "Page must be a whole number from 1.", "page")
    return int(raw)


def page_of(number: int, total: int, size: int = PAGE_SIZE) -> Page:
    """Page `number`, moved back to the last page when it lies past the end."""
    last = max(1, -(-total // size))
    return Page(min(number, last), size, total)


# --- filters (issue 17 item 4) ----------------------------------------------------------

_F = table_of(FollowUp)
_U = table_of(User)


class EncounterFilter(DateRange):
    """My encounters: by day of `occurred_at`, follow-up status and recipient discipline."""

    status: FollowUpStatus | None = Field(default=None, description="Follow-up status")
    discipline: RecipientDiscipline | None = Field(default=None,
                                                   description="Recipient discipline")


def status_where(status: FollowUpStatus, today: date) -> ColumnElement[bool]:
    """Rows whose effective follow-up status (`effective_status`) is `status`."""
    if status is FollowUpStatus.NONE:
        return _F.c.id.is_(None)
    if status is FollowUpStatus.OVERDUE:
        return and_(_F.c.status == FollowUpStatus.OPEN.value, _F.c.due_on < today)
    if status is FollowUpStatus.OPEN:
        return and_(_F.c.status == FollowUpStatus.OPEN.value, _F.c.due_on >= today)
    return _F.c.status == status.value


def encounter_where(ctx: NodeContext, since: date | None, until: date | None,
                    status: FollowUpStatus | None,
                    discipline: RecipientDiscipline | None) -> list[ColumnElement[bool]]:
    """Conditions over encounters outer-joined with their follow-up."""
    out: list[ColumnElement[bool]] = []
    start, end = day_bounds(since, until, ctx.zone)
    if start is not None:
        out.append(_E.c.occurred_at >= start)
    if end is not None:
        out.append(_E.c.occurred_at < end)
    if status is not None:
        out.append(status_where(status, ctx.today()))
    if discipline is not None:
        out.append(_E.c.recipient_discipline == discipline.value)
    return out


async def count_encounters(ctx: NodeContext, p: Principal, scope: str,
                           where: Sequence[ColumnElement[bool]]) -> int:
    """How many of the caller's (or, `team`, their team's) encounters match `where`: the
    same scope as `node.records.encounters.list_encounters`."""
    joined = _E.outerjoin(_F, _F.c.encounter_id == _E.c.id)
    if scope == "team":
        joined = joined.join(_U, and_(_U.c.id == _E.c.created_by, _U.c.team == p.team))
        stmt = select(func.count()).select_from(joined).where(*where)
    else:
        stmt = select(func.count()).select_from(joined).where(
            _E.c.created_by == p.user_id, *where)
    async with ctx.db.read() as conn:
        return int((await conn.execute(stmt)).scalar_one())
