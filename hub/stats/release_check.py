"""A release's content checks after its signature, shared by the single and the batched
ingest paths (`hub.stats.ingest`), so both refuse with the same codes in the same order:
the month (`hub.stats.release_rules.month_refusal`), then the schema's cells, groups and
noise (`bad_cells`, `bad_groups`, `bad_noise`, `over_budget`; v2 by
`hub.stats.aggregates_workload.check_workload`). See `hub.stats.aggregates` for the rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from hub.stats.aggregates_errors import AggregateCode, AggregateError
from hub.stats.aggregates_workload import check_workload
from hub.stats.estimates import KEY_SET, SCHEMA, release_variance, sensitivity
from hub.stats.release_rules import month_refusal
from protocol.hub_bodies import AggregateReleaseBody
from protocol.vocabulary import Measure
from protocol.workload import SCHEMA as WORKLOAD_SCHEMA

__all__ = ["check_content"]


def check_content(
    model: AggregateReleaseBody, now_ms: int, allowance: Decimal | None,
    weights: Mapping[str, Decimal | str] | None = None,
) -> tuple[float, dict[str, float] | None]:
    """Content checks after the signature; returns (per-cell variance of a v1 release or
    the `total` key's of a v2 one, the v2 groups' variances or None)."""
    rel = model.release
    month_refused = month_refusal(rel.month, now_ms)  # future or unfinished
    if month_refused is not None:
        raise AggregateError(*month_refused)
    if rel.schema_ == WORKLOAD_SCHEMA:
        groups = check_workload(rel, allowance=allowance, weights=weights)
        return groups["total"], groups
    if rel.schema_ != SCHEMA or set(rel.cells) != KEY_SET or rel.scale is None:
        raise AggregateError(AggregateCode.BAD_CELLS, "cells are not the fixed key set")
    try:
        scale = float(Decimal(rel.scale))
        spent = Decimal(rel.budget_spent)
    except (InvalidOperation, ValueError) as exc:
        raise AggregateError(AggregateCode.BAD_NOISE, "unreadable scale or budget") from exc
    if not (scale > 0 and math.isfinite(scale)) or spent <= 0:
        raise AggregateError(AggregateCode.BAD_NOISE, "a release must carry noise")
    l1, l2 = sensitivity(rel.bounds.per_person_month, rel.bounds.per_cell)
    implied = l2 * l2 / (2 * scale * scale) if rel.measure is Measure.ZCDP else l1 / scale
    if not math.isclose(implied, float(spent), rel_tol=1e-6):
        raise AggregateError(
            AggregateCode.BAD_NOISE, "declared scale does not match declared budget and bounds"
        )
    if allowance is not None and spent > allowance * (1 + Decimal("1e-9")):
        raise AggregateError(AggregateCode.OVER_BUDGET, "release spends over the allowance")
    return release_variance(rel.mechanism.value, scale), None
