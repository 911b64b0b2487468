"""This hub's own state statistics document, built from what hub.stats already computes.

Per month: `hub.stats.query.load_month_sums` (the running sums of the noisy releases
received, the same source as the board's statistics), then `hub.stats.summary.figure_set`
for all disciplines: estimates and their exact covariance. The document keeps each figure's
estimate and variance and the two rate pairs' covariances (`protocol.state_stats`). Reading
only: no release is made, no budget is spent, no record exists here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from federation.roster_state import RosterState
from hub.stats.estimates import DISCIPLINES
from hub.stats.figures import figure_names
from hub.stats.query import StatsFilter, load_month_sums
from hub.stats.summary import figure_set
from protocol.encoding import format_decimal
from protocol.state_stats import FIGURES, RATE_PAIRS, MonthFigures, StateStats

__all__ = ["build_state_stats", "policy_facts"]


def policy_facts(state: RosterState) -> dict[str, Any]:
    """The facts a reader needs to interpret the figures (roster policy in force)."""
    if state.current is None:
        return {"measure": "zcdp", "budget_per_node_year": "0", "per_person_month": 0,
                "per_cell": 0, "roster_version": 0}
    p = state.policy.privacy
    return {"measure": str(p.measure),
            "budget_per_node_year": format_decimal(p.budget_per_node_year),
            "per_person_month": p.per_person_month, "per_cell": p.per_cell,
            "roster_version": state.version}


async def build_state_stats(
    conn: AsyncConnection, *, network_id: str, hub_id: str, state: RosterState,
    month_from: str, month_to: str, now_ms: int,
) -> StateStats:
    sums = await load_month_sums(conn, StatsFilter(month_from, month_to))
    if figure_names(DISCIPLINES) != FIGURES:  # pragma: no cover - a schema change
        raise RuntimeError("hub figures and protocol.state_stats.FIGURES differ")
    ix = {n: i for i, n in enumerate(FIGURES)}
    months = []
    for month in sorted(sums):
        s = sums[month]
        if s.nodes == 0:
            months.append(MonthFigures(month, 0, None, None, None))
            continue
        fs = figure_set(s, DISCIPLINES)
        cov = {f"{a}/{b}": float(fs.covariance[ix[a], ix[b]]) for a, b in RATE_PAIRS}
        months.append(MonthFigures(
            month, s.nodes, tuple(float(x) for x in fs.estimate),
            tuple(float(fs.covariance[i, i]) for i in range(len(FIGURES))), cov))
    return StateStats(network_id, hub_id, now_ms, month_from, month_to,
                      policy_facts(state), tuple(months))
