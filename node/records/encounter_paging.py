"""Paging for "My encounters": a page of the supporter's own encounters, newest first, with
the count that says where the page sits ("1-50 of 83") and links to the neighbours.

The list used to stop at the latest 50 without a word; a supporter with 83 encounters could
not reach the other 33. Pages are numbered from 1 (`?page=2`); a page past the end shows the
last one. The count is one indexed read of the supporter's own rows (the same scope as the
list: `encounters.created_by`), so it reveals nothing the list does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, table_of
from node.core.errors import Code, NodeError

__all__ = ["PAGE_SIZE", "Page", "count_mine", "page_of", "requested_page"]

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


async def count_mine(ctx: NodeContext, p: Principal) -> int:
    async with ctx.db.read() as conn:
        stmt = select(func.count()).select_from(_E).where(_E.c.created_by == p.user_id)
        return int((await conn.execute(stmt)).scalar_one())
