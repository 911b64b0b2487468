"""The noise each aggregator adds to its share-sum in shared aggregation (DESIGN 7.1 item 2).

Both aggregators (the hub and the helper) run this, so it sits in `federation`. Per workload
group g (`protocol.workload`), with the roster policy's measure, monthly allowance A (yearly
budget / 12), weights w_g and bounds (m, c):

- zCDP: rho_g = w_g A; OpenDP's `make_gaussian` on integer vectors (the discrete Gaussian)
  with d_in = Delta2_g, its scale calibrated by `binary_search_param` so the privacy map at
  Delta2_g stays within rho_g (it lands on sigma_g = Delta2_g / sqrt(2 rho_g));
- pure DP: eps_g = w_g A; `make_laplace` (discrete Laplace) with d_in = Delta1_g.

Why each aggregator adds the full calibrated noise: the published figure must stay DP at the
node's charged budget if either aggregator follows the protocol (the other may publish its
share-sum without noise, or collude with whoever reads the figures). The published key then
carries two independent noises: variance 2 sigma_g^2 (Gaussian; the discrete Gaussian's
variance is at most sigma^2, so 2 sigma^2 is the conservative figure the hub publishes) or
twice the discrete Laplace variance 2 e^(-1/b) / (1 - e^(-1/b))^2.

The noise is drawn once per (round, group) and added modulo 2^64 (`protocol.shares`); an
aggregator stores its noisy answer and never draws again for the same group-month.
Only OpenDP's `contrib` feature is enabled.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import opendp.prelude as dp

from protocol.encoding import format_decimal
from protocol.vocabulary import Measure
from protocol.workload import GROUPS, check_weights, group_sensitivity

__all__ = ["AggregateNoise", "GroupNoise", "calibrate", "key_variances"]

dp.enable_features("contrib")


@dataclass(frozen=True)
class GroupNoise:
    name: str
    start: int  # index of the group's first key in WORKLOAD_KEYS
    size: int
    scale: float
    variance: float  # of ONE aggregator's noise on one key
    measurement: Any


@dataclass(frozen=True)
class AggregateNoise:
    measure: Measure
    groups: tuple[GroupNoise, ...]

    def draw(self) -> list[int]:
        """One noise vector (WORKLOAD_KEYS order): a fresh draw per group."""
        out: list[int] = []
        for g in self.groups:
            out.extend(int(v) for v in g.measurement([0] * g.size))
        return out

    def scales(self) -> dict[str, str]:
        """{group: decimal scale} as `aggregate_result.scales` carries them."""
        return {g.name: format_decimal(g.scale) for g in self.groups}


def _make(measure: Measure, scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if measure is Measure.ZCDP:
        return dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale)
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


def _float_at_most(x: Decimal) -> float:
    """`x` as a float never above it (a group never spends more than its Decimal share)."""
    f = float(x)
    return math.nextafter(f, 0.0) if Decimal(f) > x else f


def _variance(measure: Measure, scale: float) -> float:
    if measure is Measure.ZCDP:
        return scale * scale
    q = math.exp(-1.0 / scale)
    return 2 * q / (1 - q) ** 2


@functools.lru_cache(maxsize=32)
def _calibrate(measure: Measure, allowance: Decimal, weights: tuple[tuple[str, Decimal], ...],
               m: int, c: int) -> AggregateNoise:
    w = check_weights(dict(weights))
    out: list[GroupNoise] = []
    start = 0
    for g in GROUPS:
        sens = group_sensitivity(g, m, c)
        d_in: float | int = sens.l2 if measure is Measure.ZCDP else sens.l1
        d_out = _float_at_most(w[g.name] * allowance)
        if not (d_out > 0 and math.isfinite(d_out)):
            raise ValueError("a group's allowance must be positive and finite")
        scale = float(dp.binary_search_param(lambda s: _make(measure, s), d_in=d_in,
                                             d_out=d_out))
        meas = _make(measure, scale)
        if float(meas.map(d_in)) > d_out:
            raise ValueError("calibrated measurement exceeds the group's allowance")
        out.append(GroupNoise(g.name, start, len(g.keys), scale, _variance(measure, scale),
                              meas))
        start += len(g.keys)
    return AggregateNoise(measure, tuple(out))


def calibrate(
    measure: Measure | str,
    budget_per_node_year: str,
    weights: Mapping[str, str] | None,
    per_person_month: int,
    per_cell: int,
) -> AggregateNoise:
    """The per-group noise of one aggregator under a roster privacy policy (cached)."""
    allowance = Decimal(budget_per_node_year) / 12
    w = check_weights(weights)
    return _calibrate(Measure(measure), allowance, tuple(sorted(w.items())),
                      per_person_month, per_cell)


def key_variances(
    noise: AggregateNoise, other_scales: Mapping[str, str] | None = None,
) -> list[float]:
    """Variance of each published key (WORKLOAD_KEYS order): this aggregator's noise plus
    the other's, at the scales it declared (`aggregate_result.scales`; None or an unreadable
    one: the same as ours, 2 sigma_g^2 under one policy)."""
    out: list[float] = []
    for g in noise.groups:
        theirs = g.variance
        raw = (other_scales or {}).get(g.name)
        try:
            scale = float(raw) if raw is not None else 0.0
        except ValueError:
            scale = 0.0
        if scale > 0 and math.isfinite(scale):
            theirs = _variance(noise.measure, scale)
        out.extend([g.variance + theirs] * g.size)
    return out
