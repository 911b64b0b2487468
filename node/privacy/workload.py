"""The month's workload vector (`peernet.workload/v2`) and its noise, one group at a time.

The groups, keys, sensitivities and budget shares are defined once in `protocol.workload`
(its docstring argues each sensitivity). This module turns them into numbers on the node:

- `truncated_workload` reuses the v1 truncation unchanged (`node.privacy.noise.
  truncated_counts`: earliest m per person, OpenDP per-cell and per-person clamps) and sums
  its fine cells into the workload keys with a fixed 0/1 matrix (`FINE_TO_WORKLOAD`). Every
  key is therefore a margin of the same truncated counts: the exact, noise-free vector that
  local releases noise here and that shared aggregation splits into shares.
- `calibrate_groups` builds, per group, one OpenDP measurement (`contrib` feature only):
  zCDP `make_gaussian` with `l2_distance` at d_in = Delta2_g, or pure-DP `make_laplace` with
  `l1_distance` at d_in = Delta1_g; `binary_search_param` finds the smallest scale whose
  privacy map at d_in is within the group's share w_g * A of the monthly allowance A. The
  share is exact Decimal; the float handed to OpenDP is rounded down when needed so the
  spend OpenDP reports is never above the Decimal share. Cached per (measure, bounds,
  allowance, weights).
- `noisy_workload` truncates, then noises each group's slice with its measurement: the
  release's cell values, always noised.

The groups are disjoint slices of one vector measured independently; their losses add, so
a release spends sum_g spent_g <= sum_g w_g A = A.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import opendp.prelude as dp

from node.privacy.noise import I64, EncounterColumns, truncated_counts
from node.privacy.schema import CELL_KEYS, ReleasePolicy
from protocol.vocabulary import Measure, Mechanism
from protocol.workload import (
    GROUPS,
    WORKLOAD_KEYS,
    check_weights,
    group_budgets,
    group_sensitivity,
)

__all__ = [
    "FINE_TO_WORKLOAD",
    "GroupCalibration",
    "calibrate_groups",
    "noisy_workload",
    "truncated_workload",
    "workload_of_fine",
]

dp.enable_features("contrib")


def _targets(fine_key: str) -> list[str]:
    """The workload keys a v1 fine cell counts in."""
    parts = fine_key.split(":")
    fam = parts[0]
    if fam == "enc":
        d, i, a = parts[1:]
        return ["total", f"discipline:{d}", f"intervention:{i}", f"activation_type:{a}",
                f"cross:{d}:{i}"]
    if fam == "ref":
        return [f"referral:{parts[2]}"]
    return [fine_key]  # fu_due:<d>, fu_on_time:<d> keep their names


def _matrix() -> I64:
    ix = {k: n for n, k in enumerate(WORKLOAD_KEYS)}
    mat = np.zeros((len(WORKLOAD_KEYS), len(CELL_KEYS)), dtype=np.int64)
    for j, fine in enumerate(CELL_KEYS):
        for key in _targets(fine):
            mat[ix[key], j] = 1
    return mat


FINE_TO_WORKLOAD: I64 = _matrix()
_SLICES: tuple[tuple[str, slice], ...] = tuple(
    (g.name, slice(WORKLOAD_KEYS.index(g.keys[0]), WORKLOAD_KEYS.index(g.keys[0]) + len(g.keys)))
    for g in GROUPS
)


def workload_of_fine(fine: I64) -> I64:
    """The workload vector (WORKLOAD_KEYS order) of a fine v1 vector (CELL_KEYS order)."""
    return np.asarray(FINE_TO_WORKLOAD @ np.asarray(fine, dtype=np.int64), dtype=np.int64)


def truncated_workload(cols: EncounterColumns, per_person_month: int, per_cell: int) -> I64:
    """The exact (noise-free) workload vector of a month after the v1 truncation."""
    return workload_of_fine(truncated_counts(cols, per_person_month, per_cell))


@dataclass(frozen=True)
class GroupCalibration:
    group: str
    weight: Decimal
    budget_share: Decimal  # w_g * monthly allowance: what the ledger charges this group
    scale: float
    d_in: float
    budget_spent: Decimal  # OpenDP's privacy map at d_in; <= budget_share
    measurement: Any


def _make(measure: Measure, scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if measure is Measure.ZCDP:
        return dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale)
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


def _float_at_most(x: Decimal) -> float:
    f = float(x)
    return math.nextafter(f, 0.0) if Decimal(f) > x else f


@functools.lru_cache(maxsize=128)
def _calibrate(
    measure: Measure, m: int, c: int, allowance: Decimal,
    weights: tuple[tuple[str, Decimal], ...],
) -> tuple[GroupCalibration, ...]:
    w = dict(weights)
    out = []
    for name, share in group_budgets(allowance, w).items():
        sens = group_sensitivity(name, m, c)
        d_in: float | int = sens.l2 if measure is Measure.ZCDP else sens.l1
        d_out = _float_at_most(share)
        if not (d_out > 0 and math.isfinite(d_out)):
            raise ValueError("every group's privacy allowance must be positive and finite")
        scale = float(dp.binary_search_param(lambda s: _make(measure, s), d_in=d_in,
                                             d_out=d_out))
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError("calibration produced no noise")
        meas = _make(measure, scale)
        spent = Decimal(repr(float(meas.map(d_in))))
        if spent > share or spent <= 0:
            raise ValueError("calibrated measurement exceeds the group's allowance")
        out.append(GroupCalibration(name, w[name], share, scale, float(d_in), spent, meas))
    return tuple(out)


def calibrate_groups(policy: ReleasePolicy) -> tuple[GroupCalibration, ...]:
    """One calibrated measurement per workload group, in `GROUPS` order."""
    weights = check_weights(policy.workload_weights)
    return _calibrate(
        policy.measure, policy.per_person_month, policy.per_cell, policy.monthly_allowance,
        tuple(weights.items()),
    )


def mechanism_of(measure: Measure) -> Mechanism:
    return Mechanism.GAUSSIAN if measure is Measure.ZCDP else Mechanism.LAPLACE


def noisy_workload(
    cols: EncounterColumns, policy: ReleasePolicy
) -> tuple[list[int], tuple[GroupCalibration, ...]]:
    """Truncate, then noise each group at its calibrated scale: a v2 release's values."""
    cals = calibrate_groups(policy)
    exact = truncated_workload(cols, policy.per_person_month, policy.per_cell)
    values: list[int] = []
    for (name, sl), cal in zip(_SLICES, cals, strict=True):
        assert cal.group == name
        noisy = [int(v) for v in cal.measurement(exact[sl])]
        if len(noisy) != sl.stop - sl.start:
            raise ValueError("noise measurement changed the vector length")
        values += noisy
    return values, cals
