"""The published figures as linear functions of what releases carry, for either schema.

The board's document (`hub.stats.summary`) shows, for a selection of disciplines S: the
encounters, encounters by discipline, by intervention and by activation type, referrals
and referrals by target, follow-ups due and on time. Each is a fixed linear function of a
release's vector: of the 222 cells for `peernet.monthly/v1` (sums of cells, as before), of
the consistent workload estimate for `peernet.workload/v2` (`hub.stats.consistent`).

A `FigureSet` holds the figures' estimates, their full covariance matrix (rates need the
covariance of numerator and denominator; for v1 and for the v2 groups used in rates it is
zero, but it is carried exactly rather than assumed) and which figures the sources can
answer: v2 does not cross activation type or referral target with discipline, so with a
discipline selection short of all disciplines those figures are not measured (None in the
document, never a guess). Figure sets add: months, regions and schemas are independent
noises, so estimates and covariances sum.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.stats.consistent import Combined
from hub.stats.estimates import (
    ACTIVATION_TYPES,
    CELL_KEYS,
    DISCIPLINES,
    INTERVENTIONS,
    REFERRALS,
    Estimate,
)
from protocol.workload import WORKLOAD_KEYS

__all__ = ["FigureSet", "figure_names", "from_v1", "from_v2"]

F64 = npt.NDArray[np.float64]
Selection = tuple[str, ...]


@functools.lru_cache(maxsize=64)
def figure_names(discs: Selection) -> tuple[str, ...]:
    """Figure names in matrix-row order for a discipline selection."""
    return (
        ("encounters",)
        + tuple(f"by_discipline:{d}" for d in discs)
        + tuple(f"by_intervention:{i}" for i in INTERVENTIONS)
        + tuple(f"by_activation_type:{a}" for a in ACTIVATION_TYPES)
        + ("referrals",)
        + tuple(f"referrals_by_target:{t}" for t in REFERRALS)
        + ("follow_ups_due", "follow_ups_on_time")
    )


def _v1_row(name: str, discs: Selection) -> list[str]:
    """The v1 cells a figure sums."""
    head, _, arg = name.partition(":")
    ds = [arg] if head == "by_discipline" else list(discs)
    keys: list[str] = []
    for k in CELL_KEYS:
        p = k.split(":")
        if p[1] not in ds:
            continue
        fam = p[0]
        if (
            (head in ("encounters", "by_discipline") and fam == "enc")
            or (head == "by_intervention" and fam == "enc" and p[2] == arg)
            or (head == "by_activation_type" and fam == "enc" and p[3] == arg)
            or (head == "referrals" and fam == "ref")
            or (head == "referrals_by_target" and fam == "ref" and p[2] == arg)
            or (head == "follow_ups_due" and fam == "fu_due")
            or (head == "follow_ups_on_time" and fam == "fu_on_time")
        ):
            keys.append(k)
    return keys


def _v2_row(name: str, discs: Selection) -> list[str] | None:
    """The workload keys a figure sums, or None when v2 does not measure it for `discs`."""
    head, _, arg = name.partition(":")
    every = set(discs) == set(DISCIPLINES)
    if head == "encounters":
        return [f"discipline:{d}" for d in discs]
    if head == "by_discipline":
        return [f"discipline:{arg}"]
    if head == "by_intervention":
        return [f"intervention:{arg}"] if every else [f"cross:{d}:{arg}" for d in discs]
    if head == "by_activation_type":
        return [f"activation_type:{arg}"] if every else None
    if head == "referrals":
        return [f"referral:{t}" for t in REFERRALS] if every else None
    if head == "referrals_by_target":
        return [f"referral:{arg}"] if every else None
    if head in ("follow_ups_due", "follow_ups_on_time"):
        fam = "fu_due" if head == "follow_ups_due" else "fu_on_time"
        return [f"{fam}:{d}" for d in discs]
    raise ValueError(f"unknown figure {name}")  # pragma: no cover


def _matrix(
    rows: Sequence[list[str] | None], keys: Sequence[str]
) -> tuple[F64, npt.NDArray[np.bool_]]:
    index = {k: n for n, k in enumerate(keys)}
    a = np.zeros((len(rows), len(keys)), dtype=np.float64)
    ok = np.ones(len(rows), dtype=bool)
    for r, row in enumerate(rows):
        if row is None:
            ok[r] = False
            continue
        for k in row:
            a[r, index[k]] = 1.0
    a.flags.writeable = False
    ok.flags.writeable = False
    return a, ok


@functools.lru_cache(maxsize=64)
def _index(discs: Selection) -> dict[str, int]:
    return {n: i for i, n in enumerate(figure_names(discs))}


@functools.lru_cache(maxsize=64)
def _v1_matrix(discs: Selection) -> tuple[F64, npt.NDArray[np.bool_]]:
    return _matrix([_v1_row(n, discs) for n in figure_names(discs)], CELL_KEYS)


@functools.lru_cache(maxsize=64)
def _v2_matrix(discs: Selection) -> tuple[F64, npt.NDArray[np.bool_]]:
    return _matrix([_v2_row(n, discs) for n in figure_names(discs)], WORKLOAD_KEYS)


@dataclass(frozen=True)
class FigureSet:
    """Estimates (in `figure_names(discs)` order), their covariance, and which figures the
    sources measure."""

    discs: Selection
    estimate: F64
    covariance: F64
    measured: npt.NDArray[np.bool_]

    @classmethod
    def zero(cls, discs: Selection) -> FigureSet:
        n = len(figure_names(discs))
        return cls(discs, np.zeros(n), np.zeros((n, n)), np.ones(n, dtype=bool))

    def __add__(self, other: FigureSet) -> FigureSet:
        if other.discs != self.discs:
            raise ValueError("figure sets of different selections")
        return FigureSet(self.discs, self.estimate + other.estimate,
                         self.covariance + other.covariance, self.measured & other.measured)

    def get(self, name: str) -> Estimate | None:
        n = _index(self.discs)[name]
        if not self.measured[n]:
            return None
        return Estimate(float(self.estimate[n]), float(self.covariance[n, n]))

    def cov(self, a: str, b: str) -> float:
        ix = _index(self.discs)
        return float(self.covariance[ix[a], ix[b]])


def from_v1(values: F64, variances: F64, discs: Selection) -> FigureSet:
    """Figures from summed v1 cells and their summed (independent) cell variances."""
    a, ok = _v1_matrix(discs)
    return FigureSet(discs, a @ values, (a * variances[None, :]) @ a.T, ok.copy())


def from_v2(combined: Combined, discs: Selection) -> FigureSet:
    """Figures from a consistent workload estimate and its covariance."""
    a, ok = _v2_matrix(discs)
    return FigureSet(discs, a @ combined.estimate, a @ combined.covariance @ a.T, ok.copy())
