"""Statistics over received releases: pure math, no I/O (DESIGN section 7).

This module holds the v1 schema, the noise variances and one estimate's interval and
display. v2 workload releases are combined by `hub.stats.consistent`; the figures of either
schema are built by `hub.stats.figures` and the document by `hub.stats.summary`.

What the hub holds per v1 node-month is a vector of signed noisy counts on the fixed schema
`peernet.monthly/v1` (`CELL_KEYS`, the same 222 cells the node builds; a test checks the two
lists are equal) and the noise it was released with (mechanism and scale).

Estimates
---------
- A total is a sum of cells over nodes and months. Margins (all disciplines, all
  interventions, ...) are sums of the raw signed cell values: nothing is clamped or rounded
  before summing, so the noise stays unbiased and its variance stays known.
- The noise of every cell of a release is independent with the same variance, so the
  variance of a sum is the number of (node, cell) terms times each release's variance:
  discrete Laplace with scale b: 2 e^(-1/b) / (1 - e^(-1/b))^2; discrete Gaussian with
  scale sigma (OpenDP: P(x) ~ exp(-x^2 / (2 sigma^2))): sum x^2 P(x), which is sigma^2 to
  many digits once sigma >= 1 and a little less below (computed exactly here).
- 95% interval: estimate +/- 1.96 sqrt(variance) (a sum of many independent noises is close
  to normal; for a single Laplace release it is a little narrower than a true 95%).
- Rates (referral rate = referrals / encounters, follow-up on-time rate = on time / due):
  the ratio of the two estimates, with the delta-method variance
  Var(A/B) ~ Var(A)/B^2 + A^2 Var(B)/B^4 - 2 A Cov(A, B)/B^3 (the covariance is zero for
  v1 cells and for the v2 groups rates use, but is taken from the figures' covariance).
  Undefined (null) when the denominator's estimate is not positive.
- Display only: counts are rounded and clamped at zero, rates clamped to [0, 1]; an
  interval is moved into the possible range at its full width, never narrowed
  (`display_interval`), and rounded outward. The unclamped estimate and raw interval are
  always returned beside them.

The intervals describe the uncertainty added by the privacy noise, not sampling error or
missing reports.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protocol.vocabulary import Discipline, Intervention, Mechanism

__all__ = [
    "ACTIVATION_TYPES",
    "CELL_INDEX",
    "CELL_KEYS",
    "DISCIPLINES",
    "REFERRALS",
    "SCHEMA",
    "Estimate",
    "Z95",
    "cell_indices",
    "display_interval",
    "ratio",
    "release_variance",
    "sensitivity",
]

SCHEMA = "peernet.monthly/v1"
Z95 = 1.959963984540054

DISCIPLINES = tuple(d.value for d in Discipline)
INTERVENTIONS = tuple(i.value for i in Intervention)
ACTIVATION_TYPES = ("self", "supervisor", "post_critical_incident", "peer_outreach",
                    "interagency")
REFERRALS = ("eap", "clinician", "chaplain", "crisis_line", "other")

_FAMILIES: tuple[tuple[str, ...], ...] = (
    tuple(f"enc:{d}:{i}:{a}" for d in DISCIPLINES for i in INTERVENTIONS
          for a in ACTIVATION_TYPES),
    tuple(f"ref:{d}:{r}" for d in DISCIPLINES for r in REFERRALS),
    tuple(f"fu_due:{d}" for d in DISCIPLINES),
    tuple(f"fu_on_time:{d}" for d in DISCIPLINES),
)
CELL_KEYS: tuple[str, ...] = tuple(k for fam in _FAMILIES for k in fam)
CELL_INDEX: Mapping[str, int] = {k: i for i, k in enumerate(CELL_KEYS)}
KEY_SET = frozenset(CELL_KEYS)

F64 = npt.NDArray[np.float64]


def sensitivity(per_person_month: int, per_cell: int) -> tuple[int, float]:
    """(L1, L2) sensitivity of a release for one person (see `node.privacy.release`); the hub uses
    it to check that a release's declared scale matches its declared budget."""
    l1 = 0
    l2sq = 0
    for fam in _FAMILIES:
        s = min(per_person_month, len(fam) * per_cell)
        q, r = divmod(s, per_cell)
        l1 += s
        l2sq += q * per_cell * per_cell + r * r
    return l1, math.sqrt(l2sq)


@functools.lru_cache(maxsize=4096)
def release_variance(mechanism: str, scale: float) -> float:
    """Variance of one cell's noise for OpenDP's integer mechanisms at `scale`."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be positive and finite")
    if mechanism == Mechanism.LAPLACE.value:
        q = math.exp(-1.0 / scale)
        return 2.0 * q / (1.0 - q) ** 2
    if mechanism == Mechanism.GAUSSIAN.value:
        if scale > 50:
            return scale * scale  # the difference is far below float precision
        r = int(40 * scale) + 10
        xs = np.arange(-r, r + 1, dtype=np.float64)
        w = np.exp(-(xs * xs) / (2.0 * scale * scale))
        return float((w * xs * xs).sum() / w.sum())
    raise ValueError("unknown mechanism")


def _clamp(v: float, lo: float, hi: float | None = None) -> float:
    v = max(lo, v)
    return v if hi is None else min(hi, v)


def display_interval(low: float, high: float, lo: float, hi: float | None) -> tuple[float, float]:
    """The interval [low, high] moved inside the possible range [lo, hi] *without narrowing
    it*: an interval running below zero is shifted up to start at zero (a true count cannot
    be negative), one above one (rates) shifted down to end at one; it is cut only where it
    is wider than the whole range. Clamping both ends instead would show a count whose raw
    interval lies below zero as "0 [0, 0]", as if it were known exactly; shifted, it reads
    "0 [0, 37]", the width the noise allows. Every true value the raw interval covers, the
    shown one covers too, so its coverage is at least the raw interval's."""
    width = high - low
    if hi is not None and width >= hi - lo:
        return lo, hi
    if low < lo:
        return lo, lo + width
    if hi is not None and high > hi:
        return hi - width, hi
    return low, high


def _outward(low: float, high: float, places: int) -> tuple[float, float]:
    """Round an interval outward (low down, high up) so rounding never narrows it."""
    f = 10.0**places
    return math.floor(low * f + 1e-9) / f, math.ceil(high * f - 1e-9) / f


@dataclass(frozen=True)
class Estimate:
    value: float
    variance: float

    @property
    def se(self) -> float:
        return math.sqrt(max(self.variance, 0.0))

    @property
    def low(self) -> float:
        return self.value - Z95 * self.se

    @property
    def high(self) -> float:
        return self.value + Z95 * self.se

    def count_json(self) -> dict[str, Any]:
        """A count: raw figures plus display figures (the point rounded and clamped at zero;
        the interval moved above zero at its full width, rounded outward)."""
        lo, hi = _outward(*display_interval(self.low, self.high, 0.0, None), 0)
        return {
            "estimate": self.value,
            "interval": [self.low, self.high],
            "se": self.se,
            "display": {
                "estimate": round(_clamp(self.value, 0.0)),
                "interval": [int(lo), int(hi)],
            },
        }

    def rate_json(self) -> dict[str, Any]:
        """A rate: the point clamped to [0, 1], the interval moved into [0, 1] at its full
        width (cut only where wider than [0, 1]), rounded outward to 3 places."""
        lo, hi = _outward(*display_interval(self.low, self.high, 0.0, 1.0), 3)
        return {
            "estimate": self.value,
            "interval": [self.low, self.high],
            "se": self.se,
            "display": {
                "estimate": round(_clamp(self.value, 0.0, 1.0), 3),
                "interval": [max(lo, 0.0), min(hi, 1.0)],
            },
        }


def ratio(a: Estimate, b: Estimate, cov: float = 0.0) -> Estimate | None:
    """a / b with the delta-method variance
    Var(a/b) ~ Var(a)/b^2 + a^2 Var(b)/b^4 - 2 a Cov(a, b)/b^3;
    None when b's estimate is not positive."""
    if b.value <= 0:
        return None
    r = a.value / b.value
    var = (a.variance / b.value**2 + a.value**2 * b.variance / b.value**4
           - 2 * a.value * cov / b.value**3)
    return Estimate(r, max(var, 0.0))


def cell_indices(family: str, discipline: str | None = None, **match: str) -> list[int]:
    """Indices of the cells of `family` (enc, ref, fu_due, fu_on_time) matching filters.
    `match` keys: intervention, activation_type (enc), target (ref)."""
    return list(_cell_indices(family, discipline, match.get("intervention"),
                              match.get("activation_type"), match.get("target")))


@functools.lru_cache(maxsize=4096)
def _cell_indices(
    family: str, discipline: str | None, intervention: str | None,
    activation_type: str | None, target: str | None,
) -> tuple[int, ...]:
    out = []
    for i, key in enumerate(CELL_KEYS):
        parts = key.split(":")
        if parts[0] != family or discipline not in (None, parts[1]):
            continue
        if family == "enc" and (
            intervention not in (None, parts[2]) or activation_type not in (None, parts[3])
        ):
            continue
        if family == "ref" and target not in (None, parts[2]):
            continue
        out.append(i)
    return tuple(out)


