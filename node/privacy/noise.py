"""From encounter facts to the month's noisy cell counts: truncation, sensitivity, noise.

Everything here runs on the node, on the facts of one month's encounters (`encode` turns
them into columns; no record content beyond the cell coordinates enters). `noisy_counts`
is the only way out, and it always adds noise.

Privacy unit and contribution bounds
------------------------------------
The unit is one supported responder (`recipient_ref`, a keyed pseudonym) per node-year.
Two bounds come from the roster policy: at most `per_person_month` (m) encounters of one
person count in a month, and at most `per_cell` (c) of them in any one cell.

Truncation happens in three steps:

1. *Selection* (numpy, for consistency only): per person, the m earliest encounters of the
   month are kept, so that all four families speak of the same encounters. Nothing below
   relies on this step for privacy.
2. *Per-cell bound* (OpenDP): the per-(person, cell) counts, one element per pair, pass
   through `make_clamp((0, c))`.
3. *Per-person bound* (OpenDP): within each person (cells in a fixed order) the running sum
   of the clamped counts passes through `make_clamp((0, m))`; the kept amount of a cell is
   the difference of consecutive clamped running sums. Whatever step 1 did, a person's kept
   amounts in one family are each in [0, c] and add up to at most m.

Both clamps are OpenDP transformations (`contrib` feature only) over the per-id aggregated
vector; the per-cell totals are then plain sums of the kept amounts.

Sensitivity
-----------
Adding or removing one person changes the released vector by that person's kept-amount
vector v. In one family with C cells, v has entries in [0, c] summing to at most
s = min(m, C c). Hence

    ||v_f||_1 <= s,        ||v_f||_2^2 <= max sum v_k^2 = q c^2 + r^2   where (q, r) = divmod(s, c)

(the sum of squares of bounded entries with a bounded total is largest when the total is
packed into as few cells as possible; it is at most c m). Each kept encounter counts at
most once in each family, and the families are disjoint coordinates, so over the whole
vector

    Delta_1 = sum_f s_f,        Delta_2 = sqrt(sum_f (q_f c^2 + r_f^2)).

With the defaults m = 4, c = 1 every family allows s = 4 (a person's discipline is per
encounter, so even the six follow-up cells can take four), hence Delta_1 = 16 and
Delta_2 = sqrt(16) = 4. `sensitivity` computes the figures from the cell counts.

Measures and noise
------------------
- zCDP (default): one vector-valued `make_gaussian` over `vector_domain(atom_domain(i64))`
  with `l2_distance(f64)` and d_in = Delta_2. On integers OpenDP samples the discrete
  Gaussian: P(x) ~ exp(-x^2 / (2 sigma^2)), `scale` = sigma; its variance is slightly
  below sigma^2 for small sigma (the hub computes it exactly).
- pure DP (policy option): one `make_laplace` over the same domain with `l1_distance(i64)`
  and d_in = Delta_1; on integers the discrete Laplace P(x) ~ exp(-|x| / b), `scale` = b,
  variance 2 e^(-1/b) / (1 - e^(-1/b))^2.

The scale is calibrated once per (schema, bounds, monthly allowance, measure) with
`binary_search_param` so that the measurement's privacy map at d_in stays within the
monthly allowance (yearly budget / 12); 12 monthly releases compose to at most the yearly
budget (zCDP rho and pure-DP epsilon both add). The calibration is cached per process.

Noise cannot be turned off: there is no parameter for it; the budget must be positive and
finite, and a measurement whose scale came out non-positive is refused.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

from node.privacy.schema import (
    ACTIVATION_TYPES,
    CELL_KEYS,
    DISCIPLINES,
    FAMILIES,
    INTERVENTIONS,
    REFERRALS,
    SCHEMA,
    ReleasePolicy,
)
from protocol.vocabulary import Measure, Mechanism

__all__ = [
    "Calibration",
    "EncounterColumns",
    "EncounterFacts",
    "calibrate",
    "encode",
    "noisy_counts",
    "sensitivity",
    "truncated_counts",
]

dp.enable_features("contrib")

# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncounterFacts:
    """What the release reads of one encounter (and nothing more)."""

    recipient_ref: str
    occurred_at: int
    recipient_discipline: str
    intervention: str
    activation_type: str
    referral: str | None
    has_follow_up: bool
    follow_up_on_time: bool


I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EncounterColumns:
    """One month of encounters as int64 columns. `person` is any per-month integer code of
    `recipient_ref`; `order` sorts a person's encounters (time, then a tie-breaker); the
    four cell columns hold the index within their family, or -1 for "no cell"."""

    person: I64
    order: I64
    enc: I64
    ref: I64
    fu_due: I64
    fu_on_time: I64

    def __post_init__(self) -> None:
        n = len(self.person)
        for col in (self.order, self.enc, self.ref, self.fu_due, self.fu_on_time):
            if len(col) != n:
                raise ValueError("columns differ in length")
        sizes = [len(f.keys) for f in FAMILIES]
        for col, size, optional in zip(self.family_columns(), sizes, (False, True, True, True),
                                       strict=True):
            if n and (int(col.max()) >= size or int(col.min()) < (-1 if optional else 0)):
                raise ValueError("cell index out of range")

    def family_columns(self) -> tuple[I64, I64, I64, I64]:
        return (self.enc, self.ref, self.fu_due, self.fu_on_time)

    def __len__(self) -> int:
        return len(self.person)


def encode(rows: Iterable[EncounterFacts]) -> EncounterColumns:
    """Columns from encounter facts (the database path); values outside the vocabularies
    raise ValueError."""
    d_ix = {v: i for i, v in enumerate(DISCIPLINES)}
    i_ix = {v: i for i, v in enumerate(INTERVENTIONS)}
    a_ix = {v: i for i, v in enumerate(ACTIVATION_TYPES)}
    r_ix = {v: i for i, v in enumerate(REFERRALS)}
    people: dict[str, int] = {}
    person: list[int] = []
    order: list[int] = []
    enc: list[int] = []
    ref: list[int] = []
    fu: list[int] = []
    fu_ok: list[int] = []
    for r in rows:
        d = d_ix[r.recipient_discipline]
        person.append(people.setdefault(r.recipient_ref, len(people)))
        order.append(r.occurred_at)
        enc.append(
            (d * len(INTERVENTIONS) + i_ix[r.intervention]) * len(ACTIVATION_TYPES)
            + a_ix[r.activation_type]
        )
        ref.append(-1 if r.referral is None else d * len(REFERRALS) + r_ix[r.referral])
        fu.append(d if r.has_follow_up else -1)
        fu_ok.append(d if r.has_follow_up and r.follow_up_on_time else -1)

    def col(xs: list[int]) -> I64:
        return np.asarray(xs, dtype=np.int64)

    return EncounterColumns(col(person), col(order), col(enc), col(ref), col(fu), col(fu_ok))


# --- truncation (OpenDP) -------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _clamp(upper: int) -> Any:
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.symmetric_distance()
    return dp.t.make_clamp(*space, bounds=(0, upper))


def _select_earliest(cols: EncounterColumns, m: int) -> I64:
    """Row indices of each person's m earliest encounters (consistency, not privacy)."""
    n = len(cols)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.lexsort((cols.order, cols.person))
    p = cols.person[idx]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(p[1:], p[:-1], out=starts[1:])
    pos = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(starts, pos, 0))
    rank = pos - first
    return idx[rank < m]


def _family_contributions(person: I64, cell: I64, size: int, m: int, c: int) -> I64:
    """Per-cell totals of one family after the OpenDP per-cell and per-person clamps."""
    present = cell >= 0
    if not present.any():
        return np.zeros(size, dtype=np.int64)
    keys, counts = np.unique(person[present] * size + cell[present], return_counts=True)
    clamped = np.asarray(_clamp(c)(counts.astype(np.int64)), dtype=np.int64)
    owner = keys // size
    starts = np.empty(len(keys), dtype=bool)
    starts[0] = True
    np.not_equal(owner[1:], owner[:-1], out=starts[1:])
    running = np.cumsum(clamped)
    before = running - clamped  # running sum before each element
    base = np.maximum.accumulate(np.where(starts, before, 0))
    per_person_running = running - base
    capped = np.asarray(_clamp(m)(per_person_running), dtype=np.int64)
    prev = np.empty_like(capped)
    prev[0] = 0
    prev[1:] = capped[:-1]
    prev[starts] = 0
    kept = capped - prev
    return np.bincount(keys % size, weights=kept, minlength=size).astype(np.int64)


def truncated_counts(
    cols: EncounterColumns, per_person_month: int, per_cell: int, *, select: bool = True
) -> I64:
    """The exact (pre-noise) cell vector after truncation, in `CELL_KEYS` order.

    `select=False` skips the consistency selection, leaving the bounds to OpenDP alone
    (tests use it to show the clamps hold by themselves)."""
    rows = _select_earliest(cols, per_person_month) if select else None
    person = cols.person if rows is None else cols.person[rows]
    parts = []
    for fam, column in zip(FAMILIES, cols.family_columns(), strict=True):
        cell = column if rows is None else column[rows]
        parts.append(
            _family_contributions(person, cell, len(fam.keys), per_person_month, per_cell)
        )
    return np.concatenate(parts)


# --- sensitivity and calibration -----------------------------------------------------------


def sensitivity(per_person_month: int, per_cell: int) -> tuple[int, float]:
    """(Delta_1, Delta_2) of the whole cell vector for one person (see module docstring)."""
    l1 = 0
    l2sq = 0
    for fam in FAMILIES:
        s = min(per_person_month, len(fam.keys) * per_cell)
        q, r = divmod(s, per_cell)
        l1 += s
        l2sq += q * per_cell * per_cell + r * r
    return l1, math.sqrt(l2sq)


@dataclass(frozen=True)
class Calibration:
    measure: Measure
    mechanism: Mechanism
    scale: float
    d_in: float
    budget_spent: float
    measurement: Any


def _make(measure: Measure, scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if measure is Measure.ZCDP:
        return dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale=scale)
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


@functools.lru_cache(maxsize=128)
def _calibrate(
    schema: str, measure: Measure, m: int, c: int, allowance: Decimal
) -> Calibration:
    del schema  # part of the cache key: a new schema may change the sensitivity
    l1, l2 = sensitivity(m, c)
    d_in: float | int = l2 if measure is Measure.ZCDP else l1
    d_out = float(allowance)
    if not (d_out > 0 and math.isfinite(d_out)):
        raise ValueError("the monthly privacy allowance must be positive and finite")
    scale = float(dp.binary_search_param(lambda s: _make(measure, s), d_in=d_in, d_out=d_out))
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("calibration produced no noise")
    meas = _make(measure, scale)
    spent = float(meas.map(d_in))
    if spent > d_out:
        raise ValueError("calibrated measurement exceeds the allowance")
    mech = Mechanism.GAUSSIAN if measure is Measure.ZCDP else Mechanism.LAPLACE
    return Calibration(measure, mech, scale, float(d_in), spent, meas)


def calibrate(policy: ReleasePolicy) -> Calibration:
    """The noise measurement for `policy` (cached per schema, bounds, allowance, measure)."""
    return _calibrate(
        SCHEMA, policy.measure, policy.per_person_month, policy.per_cell,
        policy.monthly_allowance,
    )


def noisy_counts(cols: EncounterColumns, policy: ReleasePolicy) -> tuple[list[int], Calibration]:
    """Truncate, then add noise at the calibrated scale: the release's cell values."""
    cal = calibrate(policy)
    exact = truncated_counts(cols, policy.per_person_month, policy.per_cell)
    noisy = cal.measurement(exact)
    values = [int(v) for v in noisy]
    if len(values) != len(CELL_KEYS):
        raise ValueError("noise measurement changed the vector length")
    return values, cal

