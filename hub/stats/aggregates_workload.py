"""Workload (v2) releases at the hub: their checks, their per-key storage, and the reader the
estimator uses for both schemas.

A `peernet.workload/v2` release (`protocol.workload`) carries, instead of one scale, a scale
and a spend per query group. `hub.stats.aggregates.accept_release` verifies the signature
first (as for v1), then `check_workload` checks the content:

- `cells` are exactly `WORKLOAD_KEYS` (`bad_cells`: a missing or extra key);
- `groups` are exactly the workload's groups (`bad_groups`: an unknown or missing group);
- each group's noise is real and consistent: a positive finite scale whose privacy loss at
  the group's sensitivity for the declared bounds (`protocol.workload.group_sensitivity`,
  `implied_budget`) is what the group says it spent (`bad_noise`), and the release's
  `budget_spent` is exactly the Decimal sum of the groups' (`bad_noise`);
- against the roster policy when the caller passes it: the total within the monthly
  allowance, and each group within its weight's share of it (`over_budget`).

Storage (written by `hub.stats.ingest`): the signed body in `aggregate_releases` (for v2:
`scale` reads "groups" and `variance` is the `total` key's) and, in the same transaction,
the running per-(month, region, key) sums (`hub.stats.workload_totals`) and exact variance
sums (`hub.stats.variance_totals`). `hub.stats.aggregates_read.node_values` reads back, per
node, {key: (value, variance)} and the schema from the body, for both schemas.

`aggregate_values` (`AggregateValue`: one row per node-month and key) holds the v2 releases
received before issue 16: ingest wrote it until then, the migrations fill the running sums
from it, and nothing reads it now (the bodies hold the same values; writing 71 rows a
release cost more than the rest of ingest together).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from sqlalchemy import BigInteger, Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.stats.aggregates_db import Base
from hub.stats.aggregates_errors import AggregateCode, AggregateError
from hub.stats.estimates import release_variance
from protocol.hub_bodies import Release
from protocol.workload import (
    GROUP_NAMES,
    GROUPS,
    WORKLOAD_KEYS,
    group_sensitivity,
    implied_budget,
)

__all__ = [
    "AggregateValue",
    "check_workload",
]

_KEY_SET = frozenset(WORKLOAD_KEYS)
_GROUP_SET = frozenset(GROUP_NAMES)


class AggregateValue(Base):
    """One key of one node-month's v2 release: the noisy value and its noise variance
    (releases received before issue 16; see the module docstring)."""

    __tablename__ = "aggregate_values"
    __table_args__ = (Index("ix_aggregate_values_month_region", "month", "region"),)

    node_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    region: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(BigInteger)
    variance: Mapped[float] = mapped_column(Double)


def check_workload(
    rel: Release,
    *,
    allowance: Decimal | None,
    weights: Mapping[str, Decimal | str] | None = None,
) -> dict[str, float]:
    """Content checks of a v2 release (after its signature); returns each group's noise
    variance. Raises `hub.stats.aggregates.AggregateError`."""
    if set(rel.cells) != _KEY_SET:
        raise AggregateError(AggregateCode.BAD_CELLS, "cells are not the workload's key set")
    groups = rel.groups or {}
    if set(groups) != _GROUP_SET:
        raise AggregateError(AggregateCode.BAD_GROUPS, "groups are not the workload's groups")
    try:
        total = Decimal(rel.budget_spent)
        spent = {g: Decimal(n.budget_spent) for g, n in groups.items()}
        scale = {g: float(Decimal(n.scale)) for g, n in groups.items()}
    except (InvalidOperation, ValueError) as exc:
        raise AggregateError(AggregateCode.BAD_NOISE, "unreadable scale or budget") from exc
    variances: dict[str, float] = {}
    b = rel.bounds
    for g in GROUPS:
        s, sp = scale[g.name], spent[g.name]
        if not (s > 0 and math.isfinite(s)) or sp <= 0:
            raise AggregateError(AggregateCode.BAD_NOISE, "every group must carry noise")
        implied = implied_budget(rel.measure, s,
                                 group_sensitivity(g, b.per_person_month, b.per_cell))
        if not math.isclose(implied, float(sp), rel_tol=1e-6):
            raise AggregateError(AggregateCode.BAD_NOISE,
                                 "a group's scale does not match its budget and bounds")
        variances[g.name] = release_variance(rel.mechanism.value, s)
    if sum(spent.values(), Decimal(0)) != total:
        raise AggregateError(AggregateCode.BAD_NOISE,
                             "budget_spent is not the sum of the groups' spends")
    slack = 1 + Decimal("1e-9")
    if allowance is not None:
        if total > allowance * slack:
            raise AggregateError(AggregateCode.OVER_BUDGET, "release spends over the allowance")
        if weights is not None:
            for name, w in weights.items():
                if name in spent and spent[name] > Decimal(w) * allowance * slack:
                    raise AggregateError(AggregateCode.OVER_BUDGET,
                                         f"group {name} spends over its share of the allowance")
    return variances
