"""Reading the aggregate store for a statistics query (answered only from releases already
received).

Without a node filter a query reads only the running sums kept on ingest, so its cost does
not grow with the number of nodes: v1 (`peernet.monthly/v1`) cell values from
`aggregate_totals` (per month, region and cell), v2 (`peernet.workload/v2`) key values from
`aggregate_value_totals` (per month, region and key), the exact noise-variance sums and the
release counts from `aggregate_variance_totals` (`hub.stats.variance_totals`). With a node
filter (at most `MAX_NODES` nodes) those nodes' releases are rescanned (`hub.stats.rescan`:
v1 bodies, v2 per-key rows). Both give exactly the same figures for the same releases:
values are integers and variance sums are exact until rounded once
(`load_month_sums(..., rescan=True)` is the reference the tests compare against).
Published shared-round region-months (`hub.stats.shared_sums`) add into the per-region v2
sums (not under a node filter). The estimator (`hub.stats.summary` ->
`hub.stats.consistent`) makes each region's sums consistent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease, AggregateTotal
from hub.stats.estimates import CELL_KEYS, DISCIPLINES
from hub.stats.rescan import rescan_counts, rescan_v1, rescan_v2
from hub.stats.shared_sums import V2Sums, add_shared
from hub.stats.summary import MonthSums
from hub.stats.variance_totals import (
    V1_PART,
    counts_of,
    exact_total,
    reporting_counts,
    variance_sums,
)
from hub.stats.workload_totals import AggregateValueTotal
from protocol.workload import GROUP_NAMES, KEY_GROUP, WORKLOAD_KEYS

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
_GROUP_INDEX = {g: [_WORKLOAD_INDEX[k] for k in WORKLOAD_KEYS if KEY_GROUP[k] == g]
                for g in GROUP_NAMES}


async def load_v2_sums(conn: AsyncConnection, f: StatsFilter, *, rescan: bool = False) -> V2Sums:
    """{month: {region: (values, variances)}} of the v2 releases under the filter, summed
    per key (arrays in `WORKLOAD_KEYS` order): the running sums kept on ingest
    (`aggregate_value_totals`, variances from `hub.stats.variance_totals`) without a node
    filter, a rescan of those nodes' rows (`hub.stats.rescan`) with one or when `rescan`."""
    if f.nodes or rescan:
        return await rescan_v2(conn, f.month_from, f.month_to, f.region, f.nodes or None)
    variances = await variance_sums(conn, f.month_from, f.month_to, f.region)
    return await _v2_from_totals(conn, f, variances)


async def _v2_from_totals(
    conn: AsyncConnection, f: StatsFilter, variances: Mapping[str, Mapping[str, Any]]
) -> V2Sums:
    t = AggregateValueTotal
    stmt = select(t.month, t.region, t.key, t.value_sum).where(
        t.month >= f.month_from, t.month <= f.month_to)
    if f.region is not None:
        stmt = stmt.where(t.region == f.region)
    out: V2Sums = {}
    n = len(WORKLOAD_KEYS)
    for month, region, key, vsum in (await conn.execute(stmt)).all():
        got = out.setdefault(month, {}).get(region)
        if got is None:
            varis = np.zeros(n)
            for g, part in variances.get(month, {}).get(region, {}).items():
                if g in _GROUP_INDEX:
                    varis[_GROUP_INDEX[g]] = part.var_sum
            got = out[month][region] = (np.zeros(n), varis)
        got[0][_WORKLOAD_INDEX[key]] = float(vsum)
    return out


async def load_month_sums(
    conn: AsyncConnection, f: StatsFilter, *, rescan: bool = False
) -> dict[str, MonthSums]:
    """Per month in the range: the v1 sums (values, variances), the v2 sums per region (local
    releases plus published shared region-months, `hub.stats.shared_sums`) and the node
    count (either schema, and the shared rounds' contributors). From the running sums kept
    on ingest; `rescan` (and a node filter) reads every release instead: the same figures."""
    if f.nodes or rescan:
        nodes = f.nodes or None
        v1 = await rescan_v1(conn, f.month_from, f.month_to, f.region, nodes)
        counts = await rescan_counts(conn, f.month_from, f.month_to, f.region, nodes)
        v2 = await load_v2_sums(conn, f, rescan=True)
    else:
        variances = await variance_sums(conn, f.month_from, f.month_to, f.region)
        v1 = await _load_v1_sums(conn, f, variances)
        counts = counts_of(variances)
        v2 = await _v2_from_totals(conn, f, variances)
    shared = {} if f.nodes else await add_shared(conn, v2, f.month_from, f.month_to, f.region)
    n = len(CELL_KEYS)
    out = {}
    for m in months_between(f.month_from, f.month_to):
        values, variances = v1.get(m, (np.zeros(n), np.zeros(n)))
        out[m] = MonthSums(values, variances, counts.get(m, 0) + shared.get(m, 0),
                           v2.get(m, {}))
    return out


async def _load_v1_sums(
    conn: AsyncConnection, f: StatsFilter, variances: Mapping[str, Mapping[str, Any]]
) -> dict[str, tuple[Any, Any]]:
    """{month: (cell values, per-cell variances)} from the running sums: values from
    `aggregate_totals`, the exact variance sum from `hub.stats.variance_totals`."""
    t = AggregateTotal
    stmt = (
        select(t.month, t.cell, func.sum(t.value_sum))
        .where(t.month >= f.month_from, t.month <= f.month_to)
        .group_by(t.month, t.cell)
    )
    if f.region is not None:
        stmt = stmt.where(t.region == f.region)
    n = len(CELL_KEYS)
    out: dict[str, tuple[Any, Any]] = {}
    for month, cell, vsum in (await conn.execute(stmt)).all():
        got = out.get(month)
        if got is None:
            var = exact_total(p[V1_PART] for p in variances.get(month, {}).values()
                              if V1_PART in p)
            got = out[month] = (np.zeros(n), np.full(n, var))
        got[0][cell] = float(vsum)
    return out


async def reporting(conn: AsyncConnection, f: StatsFilter) -> dict[str, int]:
    """Nodes reporting per month under the filter's region and nodes."""
    if f.nodes:
        return await rescan_counts(conn, f.month_from, f.month_to, f.region, f.nodes)
    return await reporting_counts(conn, f.month_from, f.month_to, f.region)


async def reported_nodes(conn: AsyncConnection, month: str) -> set[str]:
    rows = await conn.execute(
        select(AggregateRelease.node_id).where(AggregateRelease.month == month)
    )
    return {r for (r,) in rows}


def disciplines_or_all(ds: Sequence[str]) -> list[str]:
    return list(ds) if ds else list(DISCIPLINES)
