"""Yearly privacy spending per measure: rho (zCDP) and epsilon (pure DP) are never added up.

A node's ledger may hold releases under both measures in one year (the board changed the
roster policy mid-year). `budget_spent` is rho for a zCDP release and epsilon for a pure-DP
one: different units, so one sum of both is meaningless (it under- or over-counts). Totals
are kept per measure (`spent_by_measure`), and the check of a new release
(`spent_against`) is made in the policy's measure:

- under zCDP, zCDP releases count their rho, and each earlier pure-DP release counts as
  eps^2 / 2 (an eps-DP mechanism is (eps^2/2)-zCDP, Bun & Steinke 2016, Prop. 1.4; zCDP
  composes additively), so a year's zCDP total covers everything released that year;
- under pure DP, pure-DP releases count their epsilon; a zCDP release has no finite pure-DP
  epsilon, so none is charged here; the ledger listing shows its rho apart.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.vocabulary import Measure

__all__ = ["spent_against", "spent_by_measure", "year_rows"]

_ledger = table("release_ledger", column("node_id"), column("year"), column("measure"),
                column("budget_spent"))


async def year_rows(conn: AsyncConnection, node_id: str, year: int) -> list[tuple[str, Decimal]]:
    rows = await conn.execute(
        select(_ledger.c.measure, _ledger.c.budget_spent)
        .where(_ledger.c.node_id == node_id, _ledger.c.year == year)
    )
    return [(str(m), Decimal(v)) for m, v in rows]


async def spent_by_measure(conn: AsyncConnection, node_id: str, year: int) -> dict[str, Decimal]:
    """The year's spending, one total per measure that has releases."""
    totals: dict[str, Decimal] = {}
    for measure, spent in await year_rows(conn, node_id, year):
        totals[measure] = totals.get(measure, Decimal(0)) + spent
    return totals


async def spent_against(conn: AsyncConnection, node_id: str, year: int,
                        measure: Measure) -> Decimal:
    """What the year has spent, in `measure`'s units (module docstring)."""
    total = Decimal(0)
    for m, spent in await year_rows(conn, node_id, year):
        if m == measure.value:
            total += spent
        elif measure is Measure.ZCDP and m == Measure.PURE_DP.value:
            total += spent * spent / 2
    return total
