"""The national view: the states' published figures added up (pure math, no I/O).

States are independent noises, so per month and figure the national estimate is the sum of
the states' estimates and its variance the sum of their variances (and likewise the rate
pairs' covariances); intervals and rates then come from `hub.stats.estimates` exactly as
for one state (95% interval from the summed variance, rates by the delta method). A state
that did not report a month (no verified document covering it, or no agency reporting) is
named as missing for that month and adds nothing: the national figure then covers the
states listed, not the nation, and the page says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.stats.estimates import Estimate, ratio
from protocol.state_stats import FIGURES, RATE_PAIRS

__all__ = ["StateMonth", "national_document"]

F64 = npt.NDArray[np.float64]
_IX = {n: i for i, n in enumerate(FIGURES)}
_COV = tuple(f"{a}/{b}" for a, b in RATE_PAIRS)


@dataclass(frozen=True)
class StateMonth:
    """One state's month as published (None figures: no report)."""

    network_id: str
    month: str
    nodes: int
    estimate: Sequence[float] | None
    variance: Sequence[float] | None
    covariance: dict[str, float] | None


@dataclass
class _Acc:
    est: F64 = field(default_factory=lambda: np.zeros(len(FIGURES)))
    var: F64 = field(default_factory=lambda: np.zeros(len(FIGURES)))
    cov: F64 = field(default_factory=lambda: np.zeros(len(_COV)))
    nodes: int = 0

    def add(self, est: Any, var: Any, cov: Any, nodes: int) -> None:
        self.est += est
        self.var += var
        self.cov += cov
        self.nodes += nodes

    def block(self) -> dict[str, Any]:
        def count(name: str) -> dict[str, Any]:
            i = _IX[name]
            return Estimate(float(self.est[i]), float(self.var[i])).count_json()

        def group(head: str) -> dict[str, Any]:
            return {n.partition(":")[2]: count(n) for n in FIGURES if n.startswith(head + ":")}

        def rate(k: int) -> dict[str, Any] | None:
            a, b = RATE_PAIRS[k]
            r = ratio(Estimate(float(self.est[_IX[a]]), float(self.var[_IX[a]])),
                      Estimate(float(self.est[_IX[b]]), float(self.var[_IX[b]])),
                      float(self.cov[k]))
            return None if r is None else r.rate_json()

        return {
            "encounters": count("encounters"),
            "by_discipline": group("by_discipline"),
            "by_intervention": group("by_intervention"),
            "by_activation_type": group("by_activation_type"),
            "referrals": count("referrals"),
            "referrals_by_target": group("referrals_by_target"),
            "follow_ups_due": count("follow_ups_due"),
            "follow_ups_on_time": count("follow_ups_on_time"),
            "referral_rate": rate(0),
            "follow_up_on_time_rate": rate(1),
        }


def national_document(
    month_list: Sequence[str], networks: Sequence[str], rows: Iterable[StateMonth],
) -> dict[str, Any]:
    """Per month and over the range: the summed figures, the nodes reporting, and which of
    `networks` reported and which did not."""
    per: dict[str, dict[str, StateMonth]] = {m: {} for m in month_list}
    for r in rows:
        if r.month in per and r.network_id in networks and r.nodes > 0 \
                and r.estimate is not None:
            per[r.month][r.network_id] = r
    total = _Acc()
    out_months = []
    for m in month_list:
        acc = _Acc()
        for r in per[m].values():
            assert r.variance is not None and r.covariance is not None
            cov = np.array([r.covariance[k] for k in _COV])
            acc.add(np.asarray(r.estimate), np.asarray(r.variance), cov, r.nodes)
        total.add(acc.est, acc.var, acc.cov, acc.nodes)
        reported = sorted(per[m])
        out_months.append({
            "month": m, "states_reporting": reported,
            "states_missing": sorted(set(networks) - set(reported)),
            "nodes_reporting": acc.nodes,
            **(acc.block() if reported else _empty()),
        })
    return {
        "networks": sorted(networks),
        "months": out_months,
        "total": {"node_months": total.nodes,
                  **(total.block() if total.nodes else _empty())},
    }


def _empty() -> dict[str, Any]:
    return {k: None for k in ("encounters", "by_discipline", "by_intervention",
                              "by_activation_type", "referrals", "referrals_by_target",
                              "follow_ups_due", "follow_ups_on_time", "referral_rate",
                              "follow_up_on_time_rate")}
