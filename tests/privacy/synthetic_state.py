"""A synthetic state for the estimate tests and the privacy benchmark (no real records).

- `synthetic_state`: agencies in regions, each with a month of synthetic encounters of a
  size drawn log-uniformly between `low` and `high` (most agencies small, a few large), truncated
  exactly as the node truncates (`node.privacy.noise.truncated_counts`), as the v1 cell vector
  and as the v2 workload vector (every workload key is a sum of v1 cells: `workload_of_v1`).
- `discrete_gaussian`: exact samples of OpenDP's discrete Gaussian (P(x) ~ exp(-x^2 /
  (2 sigma^2)) on the integers; the support is cut at 14 sigma, where the mass left out is
  below 1e-40), vectorised with numpy so that thousands of trials run in a second. The hub's
  `release_variance` is this distribution's variance.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.privacy.noise import truncated_counts
from node.privacy.schema import CELL_KEYS
from protocol.workload import WORKLOAD_KEYS
from tests.privacy.synthetic import synthetic_columns

I64 = npt.NDArray[np.int64]


@functools.lru_cache(maxsize=1)
def _workload_matrix() -> npt.NDArray[np.int64]:
    """(len(WORKLOAD_KEYS) x 222): which v1 cells each workload key sums."""
    a = np.zeros((len(WORKLOAD_KEYS), len(CELL_KEYS)), dtype=np.int64)
    for r, key in enumerate(WORKLOAD_KEYS):
        k = key.split(":")
        for c, cell in enumerate(CELL_KEYS):
            p = cell.split(":")
            hit = (
                (k[0] == "total" and p[0] == "enc")
                or (k[0] == "discipline" and p[0] == "enc" and p[1] == k[1])
                or (k[0] == "intervention" and p[0] == "enc" and p[2] == k[1])
                or (k[0] == "activation_type" and p[0] == "enc" and p[3] == k[1])
                or (k[0] == "cross" and p[0] == "enc" and p[1:3] == k[1:3])
                or (k[0] == "referral" and p[0] == "ref" and p[2] == k[1])
                or (k[0] in ("fu_due", "fu_on_time") and p == k)
            )
            a[r, c] = int(hit)
    return a


def workload_of_v1(cells: I64) -> I64:
    """The v2 workload vector of a truncated v1 cell vector."""
    out: I64 = _workload_matrix() @ cells
    return out


@dataclass(frozen=True)
class State:
    regions: tuple[str, ...]
    agency_region: tuple[str, ...]
    sizes: tuple[int, ...]
    v1: I64  # agencies x 222 truncated cells
    v2: I64  # agencies x len(WORKLOAD_KEYS)

    def region_rows(self, region: str) -> list[int]:
        return [n for n, r in enumerate(self.agency_region) if r == region]


def synthetic_state(agencies: int = 40, regions: int = 4, low: int = 5, high: int = 300,
                    *, per_person_month: int = 4, per_cell: int = 1, seed: int = 15) -> State:
    rng = np.random.default_rng(seed)
    names = tuple(f"region-{r + 1}" for r in range(regions))
    sizes = tuple(int(round(math.exp(x)))
                  for x in rng.uniform(math.log(low), math.log(high), agencies))
    v1 = np.stack([
        truncated_counts(synthetic_columns(n, max(n // 3, 1), seed=seed * 1000 + a),
                         per_person_month, per_cell)
        for a, n in enumerate(sizes)
    ])
    v2 = np.stack([workload_of_v1(row) for row in v1])
    return State(names, tuple(names[a % regions] for a in range(agencies)), sizes, v1, v2)


@functools.lru_cache(maxsize=64)
def _dg_table(scale: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    r = int(math.ceil(14 * scale)) + 1
    xs = np.arange(-r, r + 1, dtype=np.int64)
    w = np.exp(-(xs.astype(np.float64) ** 2) / (2 * scale * scale))
    cdf = np.cumsum(w)
    return xs, cdf / cdf[-1]


def discrete_gaussian(rng: np.random.Generator, scale: float,
                      size: int | tuple[int, ...]) -> I64:
    """Samples of the discrete Gaussian with OpenDP's `scale` (inverse-CDF)."""
    xs, cdf = _dg_table(float(scale))
    u = rng.random(size)
    idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(xs) - 1)
    out: I64 = xs[idx]
    return out
