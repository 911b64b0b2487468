"""The hub's aggregate feature: receiving `aggregate_release` and answering statistics.

- Inbox handler for `aggregate_release` (addressed to the hub): `hub.aggregates.accept_release`
  in the inbox's transaction, with the sender's roster region and the roster policy's monthly
  allowance. A refusal carries its code (`hub.aggregates.AggregateError`; codes outside the
  wire set travel as `bad_body`). A conflicting release's alarm is written in its own
  transaction once the inbox's has ended (the inbox rolls the refused message back).
- `GET /api/v1/stats` (operator, board_analyst): the statistics document of
  `hub.stats.summarise` for `month_from`, `month_to` (default: the last 12 months), and
  optional `region`, `discipline` (comma-separated) and `node` (comma-separated) filters.
- `GET /api/v1/stats.csv`: the same figures, one row per month and metric.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.aggregates import AggregateError, accept_release, record_alarm
from hub.appkeys import AUTHORIZE, CLOCK, DB, FEDERATION
from hub.errors import Code, HubError
from hub.stats import summarise
from hub.stats_query import FilterError, StatsFilter, load_month_sums
from protocol.envelope import Opened
from protocol.messages import MessageType

__all__ = ["READERS", "filter_from_query", "setup", "stats_document"]

log = logging.getLogger("peernet.hub.stats")

READERS = frozenset({"operator", "board_analyst"})
_PENDING: set[asyncio.Task[None]] = set()


def setup(app: web.Application) -> None:
    app[FEDERATION].register_handler(MessageType.AGGREGATE_RELEASE, _release_handler(app))
    app.router.add_get("/api/v1/stats", _stats)
    app.router.add_get("/api/v1/stats.csv", _stats_csv)


def _release_handler(app: web.Application) -> Any:
    async def handler(conn: AsyncConnection, opened: Opened) -> None:
        fed = app[FEDERATION]
        sender = opened.outer.from_
        state = fed.roster.state
        region = state.node(sender).region
        allowance = Decimal(state.policy.privacy.budget_per_node_year) / 12
        try:
            await accept_release(
                conn, opened.body_json, sender=sender, keys=state, region=region,
                now_ms=app[CLOCK].now_ms(), allowance=allowance,
            )
        except AggregateError as exc:
            if exc.alarm is not None:
                _write_alarm_later(app, exc.alarm)
            raise

    return handler


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
    start, end = _months_back(now_ms, 12)
    try:
        return StatsFilter(
            month_from=query.get("month_from") or start,
            month_to=query.get("month_to") or end,
            region=query.get("region") or None,
            disciplines=_split(query.get("discipline")),
            nodes=_split(query.get("node")),
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
            if fig is None:
                w.writerow([m["month"], metric, "", "", "", m["nodes_reporting"]])
                continue
            w.writerow([m["month"], metric, f"{fig['estimate']:.6g}",
                        f"{fig['interval'][0]:.6g}", f"{fig['interval'][1]:.6g}",
                        m["nodes_reporting"]])
        for d, fig in m["by_discipline"].items():
            w.writerow([m["month"], f"encounters.{d}", f"{fig['estimate']:.6g}",
                        f"{fig['interval'][0]:.6g}", f"{fig['interval'][1]:.6g}",
                        m["nodes_reporting"]])
    return web.Response(
        text=buf.getvalue(), content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="peernet-stats.csv"'},
    )
