"""Reading the aggregate store for a statistics query (answered only from releases already
received).

Without a node filter the query reads `aggregate_totals` (one row per month, region and
cell, maintained on receipt), so its cost does not grow with the number of nodes. With a
node filter (at most `MAX_NODES` nodes) it sums those nodes' stored release bodies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease, AggregateTotal
from hub.stats.estimates import CELL_INDEX, CELL_KEYS, DISCIPLINES
from hub.stats.summary import MonthSums
from protocol.canonical import parse_json

__all__ = ["MAX_NODES", "StatsFilter", "load_month_sums", "months_between", "reporting"]

MAX_NODES = 50
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class FilterError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        self.message = message
        super().__init__(message)


def months_between(start: str, end: str) -> list[str]:
    y, m = int(start[:4]), int(start[5:])
    out = []
    while f"{y:04d}-{m:02d}" <= end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@dataclass(frozen=True)
class StatsFilter:
    month_from: str
    month_to: str
    region: str | None = None
    disciplines: tuple[str, ...] = ()
    nodes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("month_from", "month_to"):
            if not _MONTH.match(getattr(self, name)):
                raise FilterError(name, "choose a month, for example 2026-03")
        if self.month_from > self.month_to:
            raise FilterError("month_from", "the from month is after the to month")
        if len(months_between(self.month_from, self.month_to)) > 120:
            raise FilterError("month_to", "at most 120 months at once")
        for d in self.disciplines:
            if d not in DISCIPLINES:
                raise FilterError("discipline", "unknown discipline")
        if len(self.nodes) > MAX_NODES:
            raise FilterError("node", f"at most {MAX_NODES} nodes at once")
        if self.region is not None and not (0 < len(self.region) <= 64):
            raise FilterError("region", "bad region")


def _empty() -> MonthSums:
    n = len(CELL_KEYS)
    return MonthSums(np.zeros(n), np.zeros(n), 0)


async def load_month_sums(conn: AsyncConnection, f: StatsFilter) -> dict[str, MonthSums]:
    """Per month in the range: summed values, summed variances and the node count."""
    out: dict[str, MonthSums] = {}
    months = months_between(f.month_from, f.month_to)
    n = len(CELL_KEYS)
    if f.nodes:
        stmt = select(
            AggregateRelease.month, AggregateRelease.body, AggregateRelease.variance
        ).where(
            AggregateRelease.month >= f.month_from, AggregateRelease.month <= f.month_to,
            AggregateRelease.node_id.in_(f.nodes),
        )
        if f.region is not None:
            stmt = stmt.where(AggregateRelease.region == f.region)
        acc: dict[str, tuple[Any, Any, int]] = {}
        for month, body, variance in await conn.execute(stmt):
            cells = parse_json(body)["release"]["cells"]
            v = np.zeros(n)
            for k, x in cells.items():
                v[CELL_INDEX[k]] = x
            prev_v, vars_, cnt = acc.get(month, (np.zeros(n), np.zeros(n), 0))
            acc[month] = (prev_v + v, vars_ + variance, cnt + 1)
        for month in months:
            if month in acc:
                a = acc[month]
                out[month] = MonthSums(a[0], a[1], a[2])
            else:
                out[month] = _empty()
        return out
    t = AggregateTotal
    stmt2 = (
        select(t.month, t.cell, func.sum(t.value_sum), func.sum(t.var_sum))
        .where(t.month >= f.month_from, t.month <= f.month_to)
        .group_by(t.month, t.cell)
    )
    if f.region is not None:
        stmt2 = stmt2.where(t.region == f.region)
    vals: dict[str, Any] = {m: np.zeros(n) for m in months}
    varis: dict[str, Any] = {m: np.zeros(n) for m in months}
    for month, cell, vsum, varsum in await conn.execute(stmt2):
        vals[month][cell] = float(vsum)
        varis[month][cell] = float(varsum)
    counts = await reporting(conn, f)
    for m in months:
        out[m] = MonthSums(vals[m], varis[m], counts.get(m, 0))
    return out


async def reporting(conn: AsyncConnection, f: StatsFilter) -> dict[str, int]:
    """Nodes reporting per month under the filter's region and nodes."""
    r = AggregateRelease
    stmt = (
        select(r.month, func.count())
        .where(r.month >= f.month_from, r.month <= f.month_to)
        .group_by(r.month)
    )
    if f.region is not None:
        stmt = stmt.where(r.region == f.region)
    if f.nodes:
        stmt = stmt.where(r.node_id.in_(f.nodes))
    return {m: int(c) for m, c in await conn.execute(stmt)}


async def reported_nodes(conn: AsyncConnection, month: str) -> set[str]:
    rows = await conn.execute(
        select(AggregateRelease.node_id).where(AggregateRelease.month == month)
    )
    return {r for (r,) in rows}


def disciplines_or_all(ds: Sequence[str]) -> list[str]:
    return list(ds) if ds else list(DISCIPLINES)
