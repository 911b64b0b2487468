"""The monthly release's fixed schema (its cells) and the policy that bounds it.

One release per node-month on a fixed schema (DESIGN section 7); the hub sees only the
signed noisy vector `node.privacy.release` builds from these cells.

The cells (`CELL_KEYS`, 222 of them, always all present, zeros included)
-----------------------------------------------------------------------------------------
Four *families*, each a function of the month's encounters (by `occurred_at`, UTC month):

- `enc:<discipline>:<intervention>:<activation_type>` (6 x 6 x 5 = 180): encounters;
- `ref:<discipline>:<target>` (6 x 5 = 30): encounters that referred out, by target;
- `fu_due:<discipline>` (6): encounters that have a follow-up;
- `fu_on_time:<discipline>` (6): of those, follow-ups done by the end of their due day.

Rates (referral rate, follow-up on-time rate) are ratios of sums of these cells, so the hub
can derive them and their margins by summation alone. The cell axes, in index order, are
`DISCIPLINES`, `INTERVENTIONS`, `ACTIVATION_TYPES` and `REFERRALS`.

`ReleasePolicy` is what the roster policy says about releases: the measure, the budget per
node-year and the contribution bounds (`node.privacy.noise` explains how they are used).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from node.core.vocabulary import ActivationType, Intervention, RecipientDiscipline, Referral
from protocol.vocabulary import Measure, Mechanism
from protocol.workload import check_weights

__all__ = [
    "ACTIVATION_TYPES",
    "CELL_KEYS",
    "DISCIPLINES",
    "FAMILIES",
    "INTERVENTIONS",
    "REFERRALS",
    "SCHEMA",
    "TRUNCATION",
    "UNIT",
    "ReleasePolicy",
    "cells_of",
]

SCHEMA = "peernet.monthly/v1"
UNIT = "recipient_ref per node-year"
TRUNCATION = "earliest-m-per-person; opendp clamp per cell, clamp running sum per person"

DISCIPLINES = [d.value for d in RecipientDiscipline]
INTERVENTIONS = [i.value for i in Intervention]
ACTIVATION_TYPES = [a.value for a in ActivationType]
REFERRALS = [r.value for r in Referral]


class _Family(NamedTuple):
    name: str
    keys: tuple[str, ...]


FAMILIES: tuple[_Family, ...] = (
    _Family("enc", tuple(
        f"enc:{d}:{i}:{a}" for d in DISCIPLINES for i in INTERVENTIONS for a in ACTIVATION_TYPES
    )),
    _Family("ref", tuple(f"ref:{d}:{r}" for d in DISCIPLINES for r in REFERRALS)),
    _Family("fu_due", tuple(f"fu_due:{d}" for d in DISCIPLINES)),
    _Family("fu_on_time", tuple(f"fu_on_time:{d}" for d in DISCIPLINES)),
)
CELL_KEYS: tuple[str, ...] = tuple(k for f in FAMILIES for k in f.keys)

_MAX_BUDGET = Decimal(1000)

class ReleasePolicy(BaseModel):
    """What the roster policy says about releases (`federation.roster.Policy.privacy` and
    `.release_schedule`). Budget is per node-year: rho under zCDP, epsilon under pure DP."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    measure: Measure = Measure.ZCDP
    budget_per_node_year: Decimal = Field(default=Decimal("1.0"), gt=0, le=_MAX_BUDGET)
    per_person_month: int = Field(default=4, ge=1, le=1_000)
    per_cell: int = Field(default=1, ge=1, le=1_000)
    release_day: int = Field(default=5, ge=1, le=28)
    # Workload v2 (protocol.workload): group weights (None: the documented defaults), and
    # whether releases are local (one noisy release per node) or shared (via a helper).
    workload_weights: dict[str, Decimal] | None = None
    aggregation: Literal["local", "shared"] = "local"
    helper: str | None = None

    @field_validator("workload_weights")
    @classmethod
    def _weights(cls, v: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        return None if v is None else check_weights(v)

    @model_validator(mode="after")
    def _helper(self) -> ReleasePolicy:
        if self.aggregation == "shared" and not self.helper:
            raise ValueError("shared aggregation names its helper")
        return self

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
            workload_weights=getattr(p, "workload_weights", None),
            aggregation=getattr(p, "aggregation", None) or "local",
            helper=getattr(p, "helper", None),
        )

    @property
    def monthly_allowance(self) -> Decimal:
        return self.budget_per_node_year / 12

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.GAUSSIAN if self.measure is Measure.ZCDP else Mechanism.LAPLACE

def cells_of(values: Mapping[str, int]) -> list[int]:
    """Values in `CELL_KEYS` order (KeyError when one is missing)."""
    return [values[k] for k in CELL_KEYS]
