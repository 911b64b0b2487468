"""`GET /dashboard/national` (board_analyst, operator): the national view as a page.

A bar chart of the national encounters per month (95% whiskers; a month no state reported
is a gap), a table per month (estimate, interval, states reporting, states missing by
name) and the range's totals. The figures are the display figures of `hub.national.sums`
(rounded, clamped at zero, intervals moved into range at full width), the same rules as the
state dashboard.
"""

from __future__ import annotations

from aiohttp import web

from hub.appkeys import AUTHORIZE, CLOCK
from hub.dashboard.charts import Point
from hub.dashboard.pages import DashboardQuery, render
from hub.errors import Code, HubError
from hub.national.bars import interval_bars
from hub.national.view import READERS, national
from hub.stats.api import filter_from_query
from hub.stats.models import parse_query

__all__ = ["national_page"]


async def national_page(request: web.Request) -> web.Response:
    app = request.app
    await app[AUTHORIZE](request, READERS)
    q = parse_query(request.query, DashboardQuery)
    if q.region is not None or q.discipline is not None:
        raise HubError(Code.INVALID_INPUT, "national figures take only a month range",
                       "region" if q.region is not None else "discipline")
    f = filter_from_query(q.model_dump(exclude_none=True), app[CLOCK].now_ms())
    doc = await national(app, f.month_from, f.month_to)
    points = []
    for m in doc["months"]:
        e = m["encounters"]
        if e is None:
            points.append(Point(m["month"], None))
        else:
            d = e["display"]
            points.append(Point(m["month"], float(d["estimate"]), float(d["interval"][0]),
                                float(d["interval"][1])))
    chart = interval_bars(points, "National encounters per month, summed over the states "
                                  "that reported, with 95% intervals")
    return render(request, "national.html", {
        "f": f, "doc": doc, "chart": chart, "total": doc["total"],
        "nothing_reported": not any(m["states_reporting"] for m in doc["months"]),
    })
