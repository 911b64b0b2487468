"""Filters shared by the node's lists: a date range, a status, a discipline, a page.

Pages and API lists take the same named query parameters: `since` and `until` (calendar
days `YYYY-MM-DD` in the node's time zone, both inclusive), `status` and `discipline`
(values of the list's own vocabulary) and, on pages, `page` (from 1; `node.records.
encounter_paging`). An empty parameter (a GET form's untouched field) means "any". A bad
value is refused with `invalid_input` / `invalid_enum` naming the parameter; `until` before
`since` is refused too (`invalid_input`, field `until`). Pages read the query string with
`node.records.list_pages.query_model`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from node.core.errors import Code, NodeError

__all__ = ["DateRange", "check_range", "day_bounds", "query_string"]

class DateRange(BaseModel):
    """The date range every filtered list takes (its own models add status, discipline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: date | None = Field(default=None, description="From this day (node time zone)")
    until: date | None = Field(default=None, description="Through this day (node time zone)")
    page: int = Field(default=1, ge=1, le=999_999_999, description="Page number, from 1")


def check_range(since: date | None, until: date | None) -> None:
    if since is not None and until is not None and until < since:
        raise NodeError(Code.INVALID_INPUT, "until: before the start of the range", "until")


def day_bounds(since: date | None, until: date | None,
               zone: ZoneInfo) -> tuple[int | None, int | None]:
    """[start, end) in ms for the days `since` through `until` in `zone` (None: open)."""
    def ms(d: date) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=zone).timestamp() * 1000)

    return (ms(since) if since else None,
            ms(until + timedelta(days=1)) if until else None)


def query_string(model: BaseModel, **override: object) -> str:
    """The filters as a query string for links (pager), without empty ones."""
    values = {**model.model_dump(mode="json", exclude_none=True), **override}
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})
