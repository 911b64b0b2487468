"""The statistics sums read by rescanning the stored releases themselves.

Why: with a node filter (at most `hub.stats.query.MAX_NODES` nodes) the running sums cannot
be split by node, so those nodes' releases are read and summed from their stored signed
bodies (`hub.stats.stored_body`: values, and each key's noise variance). The same code over every
node (`nodes=None`) is the reference the running sums must equal exactly
(`hub.stats.query.load_month_sums(..., rescan=True)`; tests/privacy/test_hub_summary_exact):
values are integers summed exactly, variances are summed exactly and rounded once
(`hub.stats.variance_totals.exact_float`), as the running sums are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease
from hub.stats.estimates import CELL_INDEX, CELL_KEYS, SCHEMA
from hub.stats.shared_sums import V2Sums
from hub.stats.stored_body import body_values
from hub.stats.variance_totals import exact_float
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA
from protocol.workload import WORKLOAD_KEYS

__all__ = ["rescan_counts", "rescan_v1", "rescan_v2"]

_WORKLOAD_INDEX = {k: n for n, k in enumerate(WORKLOAD_KEYS)}


async def _bodies(
    conn: AsyncConnection, schema: str, month_from: str, month_to: str, region: str | None,
    nodes: Sequence[str] | None,
) -> Any:
    r = AggregateRelease
    stmt = select(r.month, r.region, r.mechanism, r.variance, r.body).where(
        r.month >= month_from, r.month <= month_to, r.schema_name == schema)
    if region is not None:
        stmt = stmt.where(r.region == region)
    if nodes is not None:
        stmt = stmt.where(r.node_id.in_(list(nodes)))
    return await conn.execute(stmt)


async def rescan_v1(
    conn: AsyncConnection, month_from: str, month_to: str, region: str | None,
    nodes: Sequence[str] | None,
) -> dict[str, tuple[Any, Any]]:
    """{month: (cell values, per-cell variances)} of the v1 releases (of `nodes`)."""
    n = len(CELL_KEYS)
    vals: dict[str, list[int]] = {}
    varis: dict[str, list[float]] = defaultdict(list)
    for month, _, mechanism, variance, body in await _bodies(
            conn, SCHEMA, month_from, month_to, region, nodes):
        acc = vals.setdefault(month, [0] * n)
        for k, (x, _var) in body_values(SCHEMA, mechanism, variance, body).items():
            acc[CELL_INDEX[k]] += x
        varis[month].append(float(variance))
    return {m: (np.array(v, dtype=np.float64), np.full(n, exact_float(varis[m])))
            for m, v in vals.items()}


async def rescan_v2(
    conn: AsyncConnection, month_from: str, month_to: str, region: str | None,
    nodes: Sequence[str] | None,
) -> V2Sums:
    """{month: {region: (values, variances)}} of the v2 releases (of `nodes`), per key in
    `WORKLOAD_KEYS` order, each key's variances summed exactly."""
    n = len(WORKLOAD_KEYS)
    vals: dict[tuple[str, str], list[int]] = {}
    varis: dict[tuple[str, str], list[list[float]]] = {}
    for month, reg, mechanism, variance, body in await _bodies(
            conn, WORKLOAD_SCHEMA, month_from, month_to, region, nodes):
        acc = vals.setdefault((month, reg), [0] * n)
        vacc = varis.setdefault((month, reg), [[] for _ in range(n)])
        for k, (x, var) in body_values(WORKLOAD_SCHEMA, mechanism, variance, body).items():
            i = _WORKLOAD_INDEX[k]
            acc[i] += x
            vacc[i].append(var)
    out: V2Sums = {}
    for (month, reg), v in vals.items():
        out.setdefault(month, {})[reg] = (
            np.array(v, dtype=np.float64),
            np.array([exact_float(x) for x in varis[(month, reg)]], dtype=np.float64))
    return out


async def rescan_counts(
    conn: AsyncConnection, month_from: str, month_to: str, region: str | None,
    nodes: Sequence[str] | None,
) -> dict[str, int]:
    """Releases stored per month (either schema), counted row by row."""
    r = AggregateRelease
    stmt = (
        select(r.month, func.count())
        .where(r.month >= month_from, r.month <= month_to)
        .group_by(r.month)
    )
    if region is not None:
        stmt = stmt.where(r.region == region)
    if nodes is not None:
        stmt = stmt.where(r.node_id.in_(list(nodes)))
    return {m: int(c) for m, c in await conn.execute(stmt)}
