"""Consistent estimates from workload releases (`peernet.workload/v2`): pure math, no I/O.

Why
---
A v2 release measures the month's encounters several times over: the total directly, and
again as the sum of each encounter marginal (discipline, intervention, activation type) and
of the discipline x intervention cross-tab, whose row and column sums are the discipline and
intervention marginals. Every one of these keys is a sum of cells of the same truncated
180-cell encounter table t (`protocol.workload`: the groups are margins of one truncated
family), so their true values satisfy linear equalities (the total is the sum of each
marginal, a discipline is the sum of its cross row, ...). Published separately, the noisy
figures would disagree with each other and the total would ignore what the marginals know.

Generalised least squares
-------------------------
Write the linked keys as y = W t + e: W (54 x 180, 0/1) sums the fine cells into each key,
e is independent noise with known variances D = diag(v) (one variance per group per node,
summed over the nodes added up). W t is estimable for any t, and its best linear unbiased
estimate is the D^-1-orthogonal projection of y on the column space of W:

    B   = an orthonormal basis of col(W)          (54 x 40: rank 36 + 5 - 1)
    C   = B (B' D^-1 B)^-1 B'                     the exact covariance of the estimate
    P   = C D^-1                                  the estimator: y_hat = P y

- unbiased: P W = W (P fixes col(W)), so E[P y] = W t whatever t is;
- consistent: P y lies in col(W), so it satisfies every linear equality W t does, exactly
  (up to float rounding): the published total is the sum of its published marginals;
- exact variance: Cov(P y) = P D P' = C (no approximation: the noises are independent
  with the stated variances; OpenDP's discrete Gaussian / Laplace variances are computed
  exactly by `hub.stats.estimates.release_variance`);
- tighter than either source: C is the smallest covariance of any linear unbiased estimate.

Groups of other families (referral, fu_due, fu_on_time) overlap nothing: they pass through
with their own variances. `fu_on_time <= fu_due` is an inequality, not an equality, and is
left alone (imposing it would bias both).

Where the projection is applied
-------------------------------
Per (month, region), on the region's summed values and summed per-key variances. When every
node in the sum has variances in the same proportions (the same policy weights: the usual
case), P is the same for each node and P applied to the sum is exactly the sum of the
per-node best estimates, i.e. the best estimate of the sum. When policies differ within a
month and region, P computed from the summed variances is still unbiased and consistent and
C is still its exact covariance; it is then only close to optimal. The state (or any set of
regions and months) is the sum of the per-(month, region) estimates and their covariances
(independent noises), so regions add up to the state exactly.

Intervals come from these covariances (`hub.stats.figures`); rates use the delta method with
the covariance of numerator and denominator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.workload import (
    ACTIVATION_TYPES,
    DISCIPLINES,
    GROUPS,
    INTERVENTIONS,
    WORKLOAD_KEYS,
)

__all__ = ["LINKED", "Combined", "combine", "encounter_functional", "estimator"]

F64 = npt.NDArray[np.float64]
_D, _I, _A = len(DISCIPLINES), len(INTERVENTIONS), len(ACTIVATION_TYPES)


def encounter_functional(key: str) -> F64 | None:
    """The 0/1 weights (over the d x i x a encounter table, flattened in that order) that a
    workload key sums, or None for a key outside the encounter family."""
    parts = key.split(":")
    cube = np.zeros((_D, _I, _A), dtype=np.float64)
    if parts[0] == "total":
        cube[:] = 1
    elif parts[0] == "discipline":
        cube[DISCIPLINES.index(parts[1]), :, :] = 1
    elif parts[0] == "intervention":
        cube[:, INTERVENTIONS.index(parts[1]), :] = 1
    elif parts[0] == "activation_type":
        cube[:, :, ACTIVATION_TYPES.index(parts[1])] = 1
    elif parts[0] == "cross":
        cube[DISCIPLINES.index(parts[1]), INTERVENTIONS.index(parts[2]), :] = 1
    else:
        return None
    return cube.reshape(-1)


_ENC_GROUPS = frozenset(g.name for g in GROUPS if g.family == "enc")
LINKED: tuple[int, ...] = tuple(
    n for n, k in enumerate(WORKLOAD_KEYS) if k.split(":")[0] in _ENC_GROUPS
)


def _basis() -> F64:
    rows = []
    for n in LINKED:
        f = encounter_functional(WORKLOAD_KEYS[n])
        if f is None:  # pragma: no cover - a workload change this module does not know
            raise RuntimeError(f"no encounter functional for {WORKLOAD_KEYS[n]}")
        rows.append(f)
    w = np.array(rows)
    u, s, _ = np.linalg.svd(w, full_matrices=False)
    rank = int((s > s[0] * 1e-10).sum())
    basis: F64 = np.ascontiguousarray(u[:, :rank])
    basis.flags.writeable = False
    return basis


_BASIS = _basis()
_LINKED_IX = np.array(LINKED, dtype=np.intp)


@dataclass(frozen=True)
class Combined:
    """Consistent estimates of every workload key (`WORKLOAD_KEYS` order) and their exact
    covariance matrix."""

    estimate: F64
    covariance: F64


@functools.lru_cache(maxsize=512)
def _estimator(var_bytes: bytes) -> tuple[F64, F64]:
    var = np.frombuffer(var_bytes, dtype=np.float64)
    lv = var[_LINKED_IX]
    b = _BASIS
    m = b.T @ (b / lv[:, None])
    c_linked = b @ np.linalg.solve(m, b.T)
    c_linked = (c_linked + c_linked.T) / 2  # exactly symmetric
    proj = np.eye(len(var))
    proj[np.ix_(_LINKED_IX, _LINKED_IX)] = c_linked / lv[None, :]
    cov = np.diag(var)
    cov[np.ix_(_LINKED_IX, _LINKED_IX)] = c_linked
    proj.flags.writeable = False
    cov.flags.writeable = False
    return proj, cov


def _checked(variances: npt.ArrayLike) -> F64:
    v = np.ascontiguousarray(variances, dtype=np.float64)
    if v.shape != (len(WORKLOAD_KEYS),):
        raise ValueError(f"expected {len(WORKLOAD_KEYS)} variances")
    if not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("variances must be positive and finite (every key carries noise)")
    return v


def estimator(variances: npt.ArrayLike) -> tuple[F64, F64]:
    """(P, C) for per-key noise variances in `WORKLOAD_KEYS` order: the linear estimator
    (estimate = P y) and the exact covariance of its estimates (module docstring). Read-only
    arrays, cached per variance vector."""
    return _estimator(_checked(variances).tobytes())


def combine(values: npt.ArrayLike, variances: npt.ArrayLike) -> Combined:
    """GLS-combined estimates from summed noisy values and summed per-key noise variances
    (both in `WORKLOAD_KEYS` order). Raises ValueError on a wrong length, a non-finite value
    or a variance that is not positive and finite."""
    y = np.asarray(values, dtype=np.float64)
    if y.shape != (len(WORKLOAD_KEYS),) or not np.all(np.isfinite(y)):
        raise ValueError(f"expected {len(WORKLOAD_KEYS)} finite values")
    proj, cov = estimator(variances)
    return Combined(proj @ y, cov)
