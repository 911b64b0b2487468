"""Reading the aggregate store for a statistics query (answered only from releases already
received).

v1 releases (`peernet.monthly/v1`): without a node filter the query reads `aggregate_totals`
(one row per month, region and cell, maintained on receipt), so its cost does not grow with
the number of nodes; with a node filter (at most `MAX_NODES` nodes) it sums those nodes'
stored release bodies.

v2 releases (`peernet.workload/v2`): without a node filter, the running per-(month, region,
key) sums of values and noise variances kept on ingest (`hub.stats.workload_totals`), so the
cost does not grow with the nodes either; with one, those nodes' per-(node-month, key) rows of
`aggregate_values` summed in SQL. Published shared-round region-months
(`hub.stats.shared_sums`) add into the per-region v2 sums (not under a node filter). The
estimator
(`hub.stats.summary` -> `hub.stats.consistent`) makes each region's sums consistent.
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
from hub.stats.aggregates_workload import AggregateValue
from hub.stats.estimates import CELL_INDEX, CELL_KEYS, DISCIPLINES, SCHEMA
from hub.stats.shared_sums import V2Sums, add_shared
from hub.stats.summary import MonthSums
from hub.stats.workload_totals import AggregateValueTotal
from protocol.canonical import parse_json
from protocol.workload import WORKLOAD_KEYS

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


_WORKLOAD_INDEX = {k: n for n, k in enumerate(WORKLOAD_KEYS)}


async def load_v2_sums(conn: AsyncConnection, f: StatsFilter) -> V2Sums:
    """{month: {region: (values, variances)}} of the v2 releases under the filter, summed
    per key (arrays in `WORKLOAD_KEYS` order): the running sums kept on ingest
    (`aggregate_value_totals`) without a node filter, those nodes' rows with one."""
    if f.nodes:
        a = AggregateValue
        stmt = (
            select(a.month, a.region, a.key, func.sum(a.value), func.sum(a.variance))
            .where(a.month >= f.month_from, a.month <= f.month_to,
                   a.node_id.in_(f.nodes))
            .group_by(a.month, a.region, a.key)
        )
        if f.region is not None:
            stmt = stmt.where(a.region == f.region)
    else:
        t = AggregateValueTotal
        stmt = select(t.month, t.region, t.key, t.value_sum, t.var_sum).where(
            t.month >= f.month_from, t.month <= f.month_to)
        if f.region is not None:
            stmt = stmt.where(t.region == f.region)
    out: V2Sums = {}
    n = len(WORKLOAD_KEYS)
    for month, region, key, vsum, varsum in await conn.execute(stmt):
        vals, varis = out.setdefault(month, {}).setdefault(region, (np.zeros(n), np.zeros(n)))
        vals[_WORKLOAD_INDEX[key]] = float(vsum)
        varis[_WORKLOAD_INDEX[key]] = float(varsum)
    return out


async def load_month_sums(conn: AsyncConnection, f: StatsFilter) -> dict[str, MonthSums]:
    """Per month in the range: the v1 sums (values, variances), the v2 sums per region (local
    releases plus published shared region-months, `hub.stats.shared_sums`) and the node
    count (either schema, and the shared rounds' contributors)."""
    v1 = await _load_v1_sums(conn, f)
    v2 = await load_v2_sums(conn, f)
    shared = {} if f.nodes else await add_shared(conn, v2, f.month_from, f.month_to, f.region)
    return {m: MonthSums(s.values, s.variances, s.nodes + shared.get(m, 0), v2.get(m, {}))
            for m, s in v1.items()}


async def _load_v1_sums(conn: AsyncConnection, f: StatsFilter) -> dict[str, MonthSums]:
    out: dict[str, MonthSums] = {}
    months = months_between(f.month_from, f.month_to)
    n = len(CELL_KEYS)
    if f.nodes:
        stmt = select(
            AggregateRelease.month, AggregateRelease.body, AggregateRelease.variance
        ).where(
            AggregateRelease.month >= f.month_from, AggregateRelease.month <= f.month_to,
            AggregateRelease.node_id.in_(f.nodes), AggregateRelease.schema_name == SCHEMA,
        )
        if f.region is not None:
            stmt = stmt.where(AggregateRelease.region == f.region)
        acc: dict[str, tuple[Any, Any]] = {}
        counts = await reporting(conn, f)
        for month, body, variance in await conn.execute(stmt):
            cells = parse_json(body)["release"]["cells"]
            v = np.zeros(n)
            for k, x in cells.items():
                v[CELL_INDEX[k]] = x
            prev_v, vars_ = acc.get(month, (np.zeros(n), np.zeros(n)))
            acc[month] = (prev_v + v, vars_ + variance)
        for month in months:
            a = acc.get(month, (np.zeros(n), np.zeros(n)))
            out[month] = MonthSums(a[0], a[1], counts.get(month, 0))
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
