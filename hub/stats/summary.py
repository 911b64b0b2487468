"""The statistics document: per month and over the range, from v1 and v2 releases.

Input per month (`MonthSums`): the summed v1 cells and their summed per-cell variances (the
releases of nodes still on `peernet.monthly/v1`; zeros when none), and per region the summed
v2 workload values and per-key variances. Each region's v2 sums are made consistent by
`hub.stats.consistent.combine`; the figures of every source are added (`hub.stats.figures`),
so a month's figure is v1 part + sum over regions of the v2 part, with the covariance summed
the same way, and the range's figure is the sum over months. Intervals come from those
variances, rates from the delta method with the numerator-denominator covariance.

A figure v2 does not measure for the selection (activation type and referrals with a
discipline filter short of all disciplines) is null for any month or range that has a v2
release in it: never estimated from something else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.stats.consistent import combine
from hub.stats.estimates import (
    ACTIVATION_TYPES,
    DISCIPLINES,
    INTERVENTIONS,
    REFERRALS,
    Estimate,
    ratio,
)
from hub.stats.figures import FigureSet, from_v1, from_v2

__all__ = ["MonthSums", "figure_set", "summarise"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MonthSums:
    """Per month: the summed v1 cell vector and per-cell variances, how many nodes reported
    (either schema), and per region the summed v2 workload values and per-key variances."""

    values: F64
    variances: F64
    nodes: int
    v2: Mapping[str, tuple[F64, F64]] = field(default_factory=dict)


def figure_set(s: MonthSums, discs: tuple[str, ...]) -> FigureSet:
    """A month's figures: the v1 part plus each region's consistent v2 part."""
    fs = from_v1(s.values, s.variances, discs)
    for region in sorted(s.v2):
        values, variances = s.v2[region]
        fs = fs + from_v2(combine(values, variances), discs)
    return fs


def _count(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else e.count_json()


def _group(fs: FigureSet, head: str, names: Sequence[str]) -> dict[str, Any] | None:
    ests = {n: fs.get(f"{head}:{n}") for n in names}
    if any(e is None for e in ests.values()):
        return None
    return {n: _count(e) for n, e in ests.items()}


def _rate(fs: FigureSet, num: str, den: str) -> dict[str, Any] | None:
    a, b = fs.get(num), fs.get(den)
    if a is None or b is None:
        return None
    r = ratio(a, b, fs.cov(num, den))
    return None if r is None else r.rate_json()


def _block(fs: FigureSet) -> dict[str, Any]:
    """All figures for one selection (a month or the whole range)."""
    return {
        "encounters": _count(fs.get("encounters")),
        "by_discipline": _group(fs, "by_discipline", fs.discs),
        "by_intervention": _group(fs, "by_intervention", INTERVENTIONS),
        "by_activation_type": _group(fs, "by_activation_type", ACTIVATION_TYPES),
        "referrals": _count(fs.get("referrals")),
        "referrals_by_target": _group(fs, "referrals_by_target", REFERRALS),
        "follow_ups_due": _count(fs.get("follow_ups_due")),
        "follow_ups_on_time": _count(fs.get("follow_ups_on_time")),
        "referral_rate": _rate(fs, "referrals", "encounters"),
        "follow_up_on_time_rate": _rate(fs, "follow_ups_on_time", "follow_ups_due"),
    }


def summarise(
    months: Mapping[str, MonthSums], disciplines: Sequence[str] | None = None
) -> dict[str, Any]:
    """The statistics document for a set of months (already filtered by region/node)."""
    discs = tuple(disciplines) if disciplines else DISCIPLINES
    per_month = []
    total = FigureSet.zero(discs)
    for month in sorted(months):
        s = months[month]
        fs = figure_set(s, discs)
        total = total + fs
        per_month.append({"month": month, "nodes_reporting": s.nodes, **_block(fs)})
    return {
        "disciplines": list(discs),
        "months": per_month,
        "total": {
            "node_months": sum(s.nodes for s in months.values()),
            **_block(total),
        },
    }
