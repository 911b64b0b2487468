"""The release workload v2 (`peernet.workload/v2`): query groups, keys, weights, sensitivity.

Why a workload (DESIGN section 7.1): v1 released one noisy 222-cell cross-tab and the hub
summed cells, so a node's monthly total carried the noise of 180 cells. v2 answers the
board's questions directly: a fixed, ordered tuple of query *groups*, each a small set of
keys with its own sensitivity and its own share (weight) of the node's monthly allowance.
This module is pure (no I/O, no OpenDP): the node (`node.privacy.workload`), the hub
(`hub.stats.aggregates`) and the shared-aggregation code all read the same definition.

Groups (default weights in `DEFAULT_WEIGHTS`, in `GROUPS` order; `WORKLOAD_KEYS` is every
key in this order, the vector order of releases and shares):

    total            "total"                                   0.30
    discipline       "discipline:<d>"       6 disciplines      0.12
    intervention     "intervention:<i>"     6 interventions    0.10
    activation_type  "activation_type:<a>"  5 types            0.08
    referral         "referral:<r>"         5 targets          0.12
    fu_due           "fu_due:<d>"           6 disciplines      0.10
    fu_on_time       "fu_on_time:<d>"       6 disciplines      0.10
    cross            "cross:<d>:<i>"        6 x 6              0.08

Why these weights: the board reads the monthly total first (30%: sigma 17.9 at the default
policy against 9.8 sqrt(180) = 131 for a v1 total); the referral and follow-up rates are the
effectiveness measures (referrals 12%, follow-ups 10% + 10%, so both sides of the on-time
rate are equally precise); the discipline split is the next most asked (12%). The total is
also the sum of each of the four encounter marginals and of the cross-tab, so the hub's
combination (inverse variance / least squares) gives the total more precision than its 30%.

The same truncation as v1
-------------------------
Every key is a *sum of cells of the v1 truncated vector* (`node.privacy.noise`): per person
at most m (`per_person_month`) encounters in a month, at most c (`per_cell`) per person in
any one fine cell, and within each of the four fine families (enc: discipline x intervention
x activation type, 180 cells; ref: discipline x target, 30; fu_due: 6; fu_on_time: 6) a
person's kept amounts add up to at most m. All encounter groups (total, discipline,
intervention, activation_type, cross) are margins of the same truncated enc family, so they
measure the same truncated count and their margins agree in expectation: combining them at
the hub is unbiased. (Clamping at each group's own cells instead would make the discipline
margins and the total disagree.)

Sensitivity of one group
------------------------
Neighbouring datasets differ in one person. Truncation is per person (the selection of a
person's earliest m encounters and both clamps look at that person alone), so the group's
answer changes by exactly A_g v, where v is that person's kept-amount vector in the group's
family and A_g sums the family's fine cells into the group's keys (the keys partition the
family). In a family of F fine cells, with K = F / n keys of n fine cells each:

- each fine cell of v is in [0, c] and the family sum is at most m, so every key of A_g v is
  in [0, u] with u = min(m, n c), and the group's entries add up to at most s = min(m, F c);
- L1: ||A_g v||_1 = sum of v over the family <= s  (Delta_1 = s);
- L2: the sum of squares of entries in [0, u] with total <= s is convex in the entries, so it
  is largest at a vertex: as many entries at u as fit, then the remainder:
  (q, r) = divmod(s, u), ||A_g v||_2^2 <= q u^2 + r^2  (Delta_2 = sqrt(q u^2 + r^2));
  q <= K always (s <= K u), so the vertex exists.

With the defaults m = 4, c = 1: total, discipline, intervention, activation_type, referral
and cross have u = s = 4 (one person's four encounters may all fall in one key), Delta_1 = 4
and Delta_2 = 4; fu_due and fu_on_time have u = 1, s = 4: Delta_1 = 4, Delta_2 = 2.
`group_sensitivity` computes these; tests check them against maximal persons and random
neighbouring datasets.

Budget and scale per group
--------------------------
The monthly allowance A (yearly budget / 12) is split by weight: budget_g = w_g A (exact
Decimal arithmetic; the weights sum to exactly 1, so the shares sum to A up to the last of 28
digits). Groups are measured independently and their privacy losses add (zCDP rho and pure-DP
epsilon both compose additively), so a release spends at most A.
- zCDP: rho_g = w_g A, Gaussian sigma_g = Delta2_g / sqrt(2 rho_g);
- pure DP: eps_g = w_g A, Laplace b_g = Delta1_g / eps_g.
`group_scales` gives these analytic scales (the hub checks a release against them); the node
calibrates with OpenDP, which lands on (slightly above) the same scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from protocol.vocabulary import Discipline, Intervention, Measure

__all__ = [
    "ACTIVATION_TYPES",
    "DEFAULT_WEIGHTS",
    "DISCIPLINES",
    "GROUPS",
    "GROUP_NAMES",
    "INTERVENTIONS",
    "KEY_GROUP",
    "REFERRALS",
    "SCHEMA",
    "WORKLOAD_KEYS",
    "Group",
    "Sensitivity",
    "check_weights",
    "group_budgets",
    "group_scales",
    "group_sensitivity",
    "implied_budget",
    "sensitivities",
]

SCHEMA = "peernet.workload/v2"

DISCIPLINES: tuple[str, ...] = tuple(d.value for d in Discipline)
INTERVENTIONS: tuple[str, ...] = tuple(i.value for i in Intervention)
# The node's vocabularies (node.core.vocabulary ActivationType, Referral); a test checks them.
ACTIVATION_TYPES: tuple[str, ...] = (
    "self", "supervisor", "post_critical_incident", "peer_outreach", "interagency",
)
REFERRALS: tuple[str, ...] = ("eap", "clinician", "chaplain", "crisis_line", "other")

# Fine (v1) family sizes in cells: the truncation bounds each family's sum by m.
_ENC = len(DISCIPLINES) * len(INTERVENTIONS) * len(ACTIVATION_TYPES)
_REF = len(DISCIPLINES) * len(REFERRALS)


@dataclass(frozen=True, slots=True)
class Group:
    """One query group: its keys, the fine family they sum, and how many fine cells each
    key sums (`cells_per_key`); `family_cells` = len(keys) * cells_per_key."""

    name: str
    keys: tuple[str, ...]
    family: str  # enc | ref | fu_due | fu_on_time (node.privacy.schema families)
    cells_per_key: int

    @property
    def family_cells(self) -> int:
        return len(self.keys) * self.cells_per_key


GROUPS: tuple[Group, ...] = (
    Group("total", ("total",), "enc", _ENC),
    Group("discipline", tuple(f"discipline:{d}" for d in DISCIPLINES), "enc",
          _ENC // len(DISCIPLINES)),
    Group("intervention", tuple(f"intervention:{i}" for i in INTERVENTIONS), "enc",
          _ENC // len(INTERVENTIONS)),
    Group("activation_type", tuple(f"activation_type:{a}" for a in ACTIVATION_TYPES), "enc",
          _ENC // len(ACTIVATION_TYPES)),
    Group("referral", tuple(f"referral:{r}" for r in REFERRALS), "ref",
          _REF // len(REFERRALS)),
    Group("fu_due", tuple(f"fu_due:{d}" for d in DISCIPLINES), "fu_due", 1),
    Group("fu_on_time", tuple(f"fu_on_time:{d}" for d in DISCIPLINES), "fu_on_time", 1),
    Group("cross", tuple(f"cross:{d}:{i}" for d in DISCIPLINES for i in INTERVENTIONS), "enc",
          len(ACTIVATION_TYPES)),
)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in GROUPS)
WORKLOAD_KEYS: tuple[str, ...] = tuple(k for g in GROUPS for k in g.keys)
KEY_GROUP: Mapping[str, str] = {k: g.name for g in GROUPS for k in g.keys}
_BY_NAME: Mapping[str, Group] = {g.name: g for g in GROUPS}

DEFAULT_WEIGHTS: Mapping[str, Decimal] = {
    "total": Decimal("0.30"),
    "discipline": Decimal("0.12"),
    "intervention": Decimal("0.10"),
    "activation_type": Decimal("0.08"),
    "referral": Decimal("0.12"),
    "fu_due": Decimal("0.10"),
    "fu_on_time": Decimal("0.10"),
    "cross": Decimal("0.08"),
}


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Delta_1 and Delta_2 of one group; `l2_squared` is exact (an integer)."""

    l1: int
    l2_squared: int

    @property
    def l2(self) -> float:
        return math.sqrt(self.l2_squared)


def group_sensitivity(group: str | Group, per_person_month: int, per_cell: int) -> Sensitivity:
    """(Delta_1, Delta_2) of `group` under bounds m, c (module docstring)."""
    g = _BY_NAME[group] if isinstance(group, str) else group
    if per_person_month < 1 or per_cell < 1:
        raise ValueError("bounds must be positive")
    u = min(per_person_month, g.cells_per_key * per_cell)
    s = min(per_person_month, g.family_cells * per_cell)
    q, r = divmod(s, u)
    return Sensitivity(s, q * u * u + r * r)


def sensitivities(per_person_month: int, per_cell: int) -> dict[str, Sensitivity]:
    return {g.name: group_sensitivity(g, per_person_month, per_cell) for g in GROUPS}


def check_weights(weights: Mapping[str, Decimal | str | int] | None) -> dict[str, Decimal]:
    """Policy weights as Decimals in `GROUPS` order (None: the defaults). Raises ValueError
    unless every group is named once (no unknown one), each weight is a finite number > 0,
    and they sum to exactly 1."""
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    unknown = sorted(set(weights) - set(GROUP_NAMES))
    if unknown:
        raise ValueError(f"unknown workload group: {unknown[0]}")
    missing = [g for g in GROUP_NAMES if g not in weights]
    if missing:
        raise ValueError(f"workload weight missing for group: {missing[0]}")
    out: dict[str, Decimal] = {}
    for name in GROUP_NAMES:
        raw = weights[name]
        try:
            if isinstance(raw, bool) or isinstance(raw, float):
                raise TypeError("weights are decimal strings")
            w = Decimal(raw)
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise ValueError(f"workload weight of {name} is not a decimal") from exc
        if not w.is_finite() or w <= 0:
            raise ValueError(f"workload weight of {name} must be > 0")
        out[name] = w
    if sum(out.values(), Decimal(0)) != 1:
        raise ValueError("workload weights must sum to 1")
    return out


def group_budgets(allowance: Decimal, weights: Mapping[str, Decimal] | None = None,
                  ) -> dict[str, Decimal]:
    """Each group's share of the monthly allowance: w_g * allowance (Decimal)."""
    w = check_weights(weights)
    return {g: w[g] * allowance for g in GROUP_NAMES}


def group_scales(
    measure: Measure,
    allowance: Decimal,
    weights: Mapping[str, Decimal] | None,
    per_person_month: int,
    per_cell: int,
) -> dict[str, float]:
    """Analytic noise scale per group: sigma_g = Delta2 / sqrt(2 rho_g) (zCDP) or
    b_g = Delta1 / eps_g (pure DP), with rho_g / eps_g = w_g * allowance."""
    out: dict[str, float] = {}
    for name, budget in group_budgets(allowance, weights).items():
        sens = group_sensitivity(name, per_person_month, per_cell)
        b = float(budget)
        if not (b > 0 and math.isfinite(b)):
            raise ValueError("a group's budget must be positive and finite")
        out[name] = sens.l2 / math.sqrt(2 * b) if measure is Measure.ZCDP else sens.l1 / b
    return out


def implied_budget(measure: Measure, scale: float, sens: Sensitivity) -> float:
    """The privacy loss a group released at `scale` spends: Delta2^2 / (2 sigma^2) (zCDP) or
    Delta1 / b (pure DP). The hub checks a release's declared spend against it."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be positive and finite")
    if measure is Measure.ZCDP:
        return sens.l2_squared / (2 * scale * scale)
    return sens.l1 / scale
