"""The hub's aggregate feature: receiving `aggregate_release` and answering statistics.

- Inbox handler for `aggregate_release` (addressed to the hub):
  `hub.stats.aggregates.accept_release` in the inbox's transaction, with the sender's roster region
  and the roster policy's monthly allowance. A refusal carries its code
  (`hub.stats.aggregates.AggregateError`; codes outside the wire set travel as `bad_body`).
- Conflict alarms: a different second release for a stored node-month is refused, and the
  inbox rolls back everything its handler wrote, so the alarm row cannot be written inside
  the handler. The handler puts it on a per-request list (a context variable set by
  `alarm_middleware` around `PUT /fed/v1/send/...`); once the batch's transaction has
  committed, the middleware writes the alarms in one transaction of their own, before the
  hub answers. So when the sender (or a test) sees the refusal, the alarm is stored. If the
  batch fails instead (500), its alarms are dropped with it: the sender retries and the
  conflict is found again. Alarms are keyed by node, month and offered body, since the
  inbox may run a handler twice for one message. Outside a request (a handler called
  directly) the alarm is written by a background task, as a last resort.
- `GET /api/v1/stats` (operator, board_analyst): the statistics document of
  `hub.stats.summary.summarise` for `month_from`, `month_to` (default: the last 12 months), and
  optional `region`, `discipline` (comma-separated) and `node` (comma-separated) filters;
  the query string is validated by `hub.stats.models.StatsQuery` (unknown, repeated or bad
  parameter: 400 `invalid_input` naming it).
- `GET /api/v1/stats.csv`: the same figures, one row per month and metric, rounded and
  clamped exactly as the dashboard shows them (blank where no agency reported).
- `GET /api/v1/stats/alarms?limit=&cursor=` (operator): the conflicting-release alarms,
  newest first, paged like every list (`next_cursor`; the `alarms` key is kept).
"""

from __future__ import annotations

import asyncio
import contextvars
import csv
import io
import logging
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION
from hub.errors import Code, HubError
from hub.stats.aggregates import AggregateAlarm, AggregateError, accept_release, record_alarm
from hub.stats.models import AggregateAlarmsQuery, StatsQuery, parse_query
from hub.stats.query import FilterError, StatsFilter, load_month_sums
from hub.stats.release_inbox import release_batch_handler
from hub.stats.release_rules import measure_refusal
from hub.stats.summary import summarise
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = [
    "OPERATOR",
    "READERS",
    "alarm_middleware",
    "filter_from_query",
    "list_alarms",
    "setup",
    "stats_document",
]

log = logging.getLogger("peernet.hub.stats")

READERS = frozenset({"operator", "board_analyst"})
OPERATOR = frozenset({"operator"})
_PENDING: set[asyncio.Task[None]] = set()
_AlarmKey = tuple[str, str, str]
_REQUEST_ALARMS: contextvars.ContextVar[dict[_AlarmKey, dict[str, Any]] | None] = (
    contextvars.ContextVar("peernet_hub_request_alarms", default=None)
)
_SEND_PREFIX = "/fed/v1/send/"


def setup(app: web.Application) -> None:
    app[FEDERATION].register_handler(MessageType.AGGREGATE_RELEASE, _release_handler(app))
    # The inbox hands all releases of a transaction to this one (`hub.stats.release_inbox`).
    app[FEDERATION].handlers.register_batch(MessageType.AGGREGATE_RELEASE,
                                            release_batch_handler(app, _keep_alarm(app)))
    app.middlewares.append(alarm_middleware)
    app.router.add_get("/api/v1/stats", _stats)
    app.router.add_get("/api/v1/stats.csv", _stats_csv)
    app.router.add_get("/api/v1/stats/alarms", _alarms)


@web.middleware
async def alarm_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Writes the conflict alarms a federation batch raised once its transaction committed
    (see module docstring)."""
    if not request.path.startswith(_SEND_PREFIX):
        response: web.StreamResponse = await handler(request)
        return response
    pending: dict[_AlarmKey, dict[str, Any]] = {}
    token = _REQUEST_ALARMS.set(pending)
    try:
        response = await handler(request)
    finally:
        _REQUEST_ALARMS.reset(token)
    if pending:
        async with request.app[DB].write() as conn:
            for alarm in pending.values():
                await record_alarm(conn, alarm)
        log.warning("conflicting aggregate release refused; %d alarm(s) recorded", len(pending))
    return response


def _release_handler(app: web.Application) -> Any:
    async def handler(conn: AsyncConnection, opened: Opened) -> None:
        fed = app[FEDERATION]
        sender = opened.outer.from_
        state = fed.roster.state
        region = state.node(sender).region
        allowance = Decimal(state.policy.privacy.budget_per_node_year) / 12
        try:
            refused = measure_refusal(opened.body_json, state.policy.privacy.measure)
            if refused is not None:
                raise AggregateError(*refused)
            await accept_release(
                conn, opened.body_json, sender=sender, keys=state, region=region,
                now_ms=app[CLOCK].now_ms(), allowance=allowance,
                weights=state.policy.privacy.workload_weights,
            )
        except AggregateError as exc:
            if exc.alarm is not None:
                keep(exc.alarm)
            raise

    keep = _keep_alarm(app)
    return handler


def _keep_alarm(app: web.Application) -> Any:
    def keep(a: dict[str, Any]) -> None:
        pending = _REQUEST_ALARMS.get()
        if pending is not None:
            # keyed: the inbox may run a handler twice (optimistic pass, then isolated),
            # and a batch may carry the same offer twice
            pending[(a["node_id"], a["month"], a["offered_body_sha256"])] = a
        else:
            _write_alarm_later(app, a)

    return keep


def _write_alarm_later(app: web.Application, alarm: dict[str, Any]) -> None:
    async def write() -> None:
        try:
            async with app[DB].write() as conn:
                await record_alarm(conn, alarm)
        except Exception:
            log.exception("could not record a conflicting-release alarm")

    task = asyncio.get_running_loop().create_task(write())
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


def _months_back(now_ms: int, n: int) -> tuple[str, str]:
    import datetime

    d = datetime.datetime.fromtimestamp(now_ms / 1000, tz=datetime.UTC)
    idx = d.year * 12 + d.month - 1 - 1  # last complete month
    first = idx - (n - 1)
    return f"{first // 12:04d}-{first % 12 + 1:02d}", f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def _split(raw: str | None) -> tuple[str, ...]:
    return tuple(x for x in (raw or "").split(",") if x)


def filter_from_query(query: Any, now_ms: int) -> StatsFilter:
    """A `StatsFilter` from a query string (strictly validated by `StatsQuery`). Without
    `month_from`, the range is the 12 months ending at `month_to`."""
    q = parse_query(query, StatsQuery)
    start, end = _months_back(now_ms, 12)
    month_to = q.month_to or end
    if q.month_from is None and q.month_to is not None:
        idx = int(month_to[:4]) * 12 + int(month_to[5:]) - 1 - 11
        start = f"{idx // 12:04d}-{idx % 12 + 1:02d}"
    try:
        return StatsFilter(
            month_from=q.month_from or start,
            month_to=month_to,
            region=q.region,
            disciplines=_split(q.discipline),
            nodes=_split(q.node),
        )
    except FilterError as exc:
        raise HubError(Code.INVALID_INPUT, exc.message, exc.field) from None


async def stats_document(app: web.Application, f: StatsFilter) -> dict[str, Any]:
    async with app[DB].read() as conn:
        sums = await load_month_sums(conn, f)
    doc = summarise(sums, f.disciplines)
    doc["filter"] = {
        "month_from": f.month_from, "month_to": f.month_to, "region": f.region,
        "discipline": list(f.disciplines), "node": list(f.nodes),
    }
    return doc


async def _stats(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, READERS)
    f = filter_from_query(request.query, request.app[CLOCK].now_ms())
    return web.json_response(await stats_document(request.app, f))


_CSV_METRICS = ("encounters", "referrals", "follow_ups_due", "follow_ups_on_time",
                "referral_rate", "follow_up_on_time_rate")


def _shown(fig: dict[str, Any]) -> list[Any]:
    """Estimate and interval exactly as the dashboard shows them: the `display` figures
    (`hub.stats.estimates.Estimate`: counts rounded and clamped at zero, rates clamped to [0, 1] and
    rounded to 3 places), so a spreadsheet and the page never disagree. The raw, unbiased
    figures stay in the JSON API (`/api/v1/stats`)."""
    d = fig["display"]
    return [d["estimate"], d["interval"][0], d["interval"][1]]


async def _stats_csv(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, READERS)
    f = filter_from_query(request.query, request.app[CLOCK].now_ms())
    doc = await stats_document(request.app, f)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["month", "metric", "estimate", "low_95", "high_95", "nodes_reporting"])
    for m in doc["months"]:
        for metric in _CSV_METRICS:
            fig = m[metric]
            if fig is None or not m["nodes_reporting"]:  # a gap on the page too
                w.writerow([m["month"], metric, "", "", "", m["nodes_reporting"]])
                continue
            w.writerow([m["month"], metric, *_shown(fig), m["nodes_reporting"]])
        for d, fig in m["by_discipline"].items():
            shown = _shown(fig) if m["nodes_reporting"] else ["", "", ""]
            w.writerow([m["month"], f"encounters.{d}", *shown, m["nodes_reporting"]])
    return web.Response(
        text=buf.getvalue(), content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="peernet-stats.csv"'},
    )


async def list_alarms(app: web.Application, limit: int = 200,
                      offset: int = 0) -> list[dict[str, Any]]:
    """The conflicting-release alarms, newest first (`offset` rows skipped)."""
    a = AggregateAlarm
    async with app[DB].read() as conn:
        rows = (await conn.execute(
            select(a.kind, a.node_id, a.month, a.stored_release_id, a.offered_release_id,
                   a.offered_body_sha256, a.received_at)
            .order_by(a.received_at.desc(), a.id.desc()).offset(offset).limit(limit)
        )).all()
    return [dict(r._mapping) for r in rows]


async def _alarms(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    q = parse_query(request.query, AggregateAlarmsQuery)  # paging: hub.openapi
    limit, start = q.limit or 200, int(q.cursor or 0)
    rows = await list_alarms(request.app, limit=limit, offset=start)
    nxt = str(start + len(rows)) if len(rows) >= limit else None
    return web.json_response({"alarms": rows, "next_cursor": nxt})
