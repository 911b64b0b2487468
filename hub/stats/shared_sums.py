"""Shared-round figures in the statistics: each published region-month adds to the v2 sums.

A shared round (`hub.stats.rounds`) publishes, per region-month, the noisy sum of its
contributors' truncated workload vectors (WORKLOAD_KEYS order) with each key's variance
2 sigma_g^2 (two aggregators, one noise each). For the estimator that is exactly what a
region's summed local v2 releases are: values and per-key variances, independent of every
other source. So `add_shared` adds each region-month's figure into the per-region v2 sums
`hub.stats.query.load_v2_sums` built, and the API and the board's pages show it with no
other change (`hub.stats.summary` makes each region's sums consistent).

A node-month counts once (`hub.stats.shared_guard`): if any contributor of a published
region-month also has a local release of that month stored, the figure is left out and a
warning is logged naming the region-month (never added on top). With a node filter no
shared figure is added: a region's sum cannot be split by node.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.aggregates import AggregateRelease
from hub.stats.rounds import Published, published_figures
from protocol.workload import WORKLOAD_KEYS

__all__ = ["V2Sums", "add_shared", "double_counted"]

log = logging.getLogger("peernet.hub.stats")

V2Sums = dict[str, dict[str, tuple[Any, Any]]]


async def double_counted(conn: AsyncConnection, figs: list[Published]) -> set[tuple[str, str]]:
    """The (month, region) of published figures one of whose contributors also released the
    month locally."""
    by_month: dict[str, set[str]] = defaultdict(set)
    for p in figs:
        by_month[p.month].update(p.nodes)
    local: set[tuple[str, str]] = set()
    r = AggregateRelease
    for month, nodes in by_month.items():
        rows = await conn.execute(select(r.node_id).where(
            r.month == month, r.node_id.in_(sorted(nodes))))
        local.update((month, n) for (n,) in rows)
    return {(p.month, p.region) for p in figs if any((p.month, n) in local for n in p.nodes)}


async def add_shared(
    conn: AsyncConnection, out: V2Sums, month_from: str, month_to: str, region: str | None,
) -> dict[str, int]:
    """Add the published shared region-months in range (and region) into `out`; returns
    the contributors counted per month."""
    figs = [p for p in await published_figures(conn, month_from, month_to)
            if region is None or p.region == region]
    refused = await double_counted(conn, figs)
    counted: dict[str, int] = defaultdict(int)
    n = len(WORKLOAD_KEYS)
    for p in figs:
        if (p.month, p.region) in refused:
            log.warning("shared figure for %s %s left out: a contributor also released the "
                        "month locally (counted once, never twice)", p.region, p.month)
            continue
        vals, varis = out.setdefault(p.month, {}).setdefault(
            p.region, (np.zeros(n), np.zeros(n)))
        vals += np.array([float(p.values[k]) for k in WORKLOAD_KEYS])
        varis += np.array([float(p.variances[k]) for k in WORKLOAD_KEYS])
        counted[p.month] += len(p.nodes)
    return dict(counted)
