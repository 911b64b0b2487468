"""The release builder: the only place where raw encounter records become aggregates.

One release per node-month on a fixed schema (DESIGN section 7). Everything below runs on
the node; the hub sees only the signed noisy vector this module produces.

The cells (`CELL_KEYS`, 222 of them, always all present, zeros included)
-----------------------------------------------------------------------------------------
Four *families*, each a function of the month's encounters (by `occurred_at`, UTC month):

- `enc:<discipline>:<intervention>:<activation_type>` (6 x 6 x 5 = 180): encounters;
- `ref:<discipline>:<target>` (6 x 5 = 30): encounters that referred out, by target;
- `fu_due:<discipline>` (6): encounters that have a follow-up;
- `fu_on_time:<discipline>` (6): of those, follow-ups done by the end of their due day.

Rates (referral rate, follow-up on-time rate) are ratios of sums of these cells, so the hub
can derive them and their margins by summation alone.

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
import importlib.metadata
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import nacl.signing
import numpy as np
import numpy.typing as npt
import opendp.prelude as dp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from node.vocabulary import ActivationType, Intervention, RecipientDiscipline, Referral
from protocol.canonical import canonical_bytes
from protocol.encoding import format_decimal, sha256_b64u
from protocol.ids import new_ulid
from protocol.messages import Measure, Mechanism, wire_json
from protocol.release import sign_release

__all__ = [
    "CELL_KEYS",
    "FAMILIES",
    "SCHEMA",
    "UNIT",
    "Calibration",
    "EncounterColumns",
    "EncounterFacts",
    "ReleasePolicy",
    "SignedRelease",
    "build_release",
    "calibrate",
    "encode",
    "month_bounds_ms",
    "noisy_counts",
    "opendp_version",
    "previous_month",
    "query_sha256",
    "sensitivity",
    "truncated_counts",
]

dp.enable_features("contrib")

SCHEMA = "peernet.monthly/v1"
UNIT = "recipient_ref per node-year"
TRUNCATION = "earliest-m-per-person; opendp clamp per cell, clamp running sum per person"

_DISC = [d.value for d in RecipientDiscipline]
_INTV = [i.value for i in Intervention]
_ACT = [a.value for a in ActivationType]
_REF = [r.value for r in Referral]


class _Family(NamedTuple):
    name: str
    keys: tuple[str, ...]


FAMILIES: tuple[_Family, ...] = (
    _Family("enc", tuple(f"enc:{d}:{i}:{a}" for d in _DISC for i in _INTV for a in _ACT)),
    _Family("ref", tuple(f"ref:{d}:{r}" for d in _DISC for r in _REF)),
    _Family("fu_due", tuple(f"fu_due:{d}" for d in _DISC)),
    _Family("fu_on_time", tuple(f"fu_on_time:{d}" for d in _DISC)),
)
CELL_KEYS: tuple[str, ...] = tuple(k for f in FAMILIES for k in f.keys)

_MAX_BUDGET = Decimal(1000)


def opendp_version() -> str:
    return importlib.metadata.version("opendp")


class ReleasePolicy(BaseModel):
    """What the roster policy says about releases (`federation.roster.Policy.privacy` and
    `.release_schedule`). Budget is per node-year: rho under zCDP, epsilon under pure DP."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    measure: Measure = Measure.ZCDP
    budget_per_node_year: Decimal = Field(default=Decimal("1.0"), gt=0, le=_MAX_BUDGET)
    per_person_month: int = Field(default=4, ge=1, le=1_000)
    per_cell: int = Field(default=1, ge=1, le=1_000)
    release_day: int = Field(default=5, ge=1, le=28)

    @field_validator("budget_per_node_year")
    @classmethod
    def _finite(cls, v: Decimal) -> Decimal:
        if not v.is_finite():
            raise ValueError("budget must be finite")
        return v

    @classmethod
    def from_roster_policy(cls, policy: Any) -> ReleasePolicy:
        """From a `federation.roster.Policy` (duck-typed: `.privacy`, `.release_schedule`)."""
        p = policy.privacy
        return cls(
            measure=Measure(p.measure),
            budget_per_node_year=Decimal(p.budget_per_node_year),
            per_person_month=p.per_person_month,
            per_cell=p.per_cell,
            release_day=policy.release_schedule.day_of_month,
        )

    @property
    def monthly_allowance(self) -> Decimal:
        return self.budget_per_node_year / 12

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.GAUSSIAN if self.measure is Measure.ZCDP else Mechanism.LAPLACE


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
    d_ix = {v: i for i, v in enumerate(_DISC)}
    i_ix = {v: i for i, v in enumerate(_INTV)}
    a_ix = {v: i for i, v in enumerate(_ACT)}
    r_ix = {v: i for i, v in enumerate(_REF)}
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
        enc.append((d * len(_INTV) + i_ix[r.intervention]) * len(_ACT) + a_ix[r.activation_type])
        ref.append(-1 if r.referral is None else d * len(_REF) + r_ix[r.referral])
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


# --- the signed release --------------------------------------------------------------------


def query_sha256(policy: ReleasePolicy) -> str:
    """SHA-256 of the query definition: schema, cells, unit, bounds, truncation, measure."""
    return sha256_b64u(
        canonical_bytes(
            {
                "schema": SCHEMA,
                "cells": list(CELL_KEYS),
                "unit": UNIT,
                "truncation": TRUNCATION,
                "bounds": {
                    "per_person_month": policy.per_person_month,
                    "per_cell": policy.per_cell,
                },
                "measure": policy.measure.value,
                "mechanism": policy.mechanism.value,
            }
        )
    )


@dataclass(frozen=True)
class SignedRelease:
    release_id: str
    month: str
    body: dict[str, Any]  # {"release": {...}, "sig": {...}}: the aggregate_release body
    body_bytes: bytes  # canonical bytes of `body`, stored and resent as they are
    calibration: Calibration
    query_sha256: str


def build_release(
    cols: EncounterColumns,
    *,
    node_id: str,
    month: str,
    policy: ReleasePolicy,
    signing_key: nacl.signing.SigningKey,
    key_version: int,
    now_ms: int,
    rand: Callable[[int], bytes] = os.urandom,
) -> SignedRelease:
    """A signed monthly release of `cols` (already restricted to `month`)."""
    values, cal = noisy_counts(cols, policy)
    release_id = new_ulid(now_ms, rand(10))
    qh = query_sha256(policy)
    release = {
        "release_id": release_id,
        "node_id": node_id,
        "month": month,
        "schema": SCHEMA,
        "query_sha256": qh,
        "measure": cal.measure.value,
        "mechanism": cal.mechanism.value,
        "scale": format_decimal(cal.scale),
        "budget_spent": format_decimal(cal.budget_spent),
        "bounds": {"per_person_month": policy.per_person_month, "per_cell": policy.per_cell},
        "opendp_version": opendp_version(),
        "cells": dict(zip(CELL_KEYS, values, strict=True)),
    }
    body = wire_json(sign_release(release, signing_key=signing_key, key_version=key_version))
    return SignedRelease(release_id, month, body, canonical_bytes(body), cal, qh)


# --- months --------------------------------------------------------------------------------


def _parse_month(month: str) -> tuple[int, int]:
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
        raise ValueError("month must be YYYY-MM")
    y, m = int(month[:4]), int(month[5:])
    if not (1 <= m <= 12 and 1970 <= y <= 9999):
        raise ValueError("month must be YYYY-MM")
    return y, m


def month_bounds_ms(month: str) -> tuple[int, int]:
    """[start, end) of a UTC calendar month in epoch milliseconds."""
    y, m = _parse_month(month)
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_of_ms(ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return f"{d.year:04d}-{d.month:02d}"


def previous_month(month: str) -> str:
    y, m = _parse_month(month)
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


def cells_of(values: Mapping[str, int]) -> list[int]:
    """Values in `CELL_KEYS` order (KeyError when one is missing)."""
    return [values[k] for k in CELL_KEYS]
