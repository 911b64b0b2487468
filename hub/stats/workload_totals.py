"""Running per-(month, region, key) sums of workload (v2) releases, kept on ingest.

Why: a statistics query must not grow with the number of nodes. v1 keeps `aggregate_totals`
per (month, region, cell); summing v2's 71 keys per node-month at query time would read
about 2.5M values at 3,000 nodes x 12 months. This table holds, per (month, region, key), the
sum of the released values, the sum of their noise variances and how many node-months went
in; `add_sums` adds a batch's pre-summed rows (`hub.stats.ingest`) in the caller's
transaction, the same one that inserts the release rows, so the value sums always equal the
per-node sums (a refused release changes neither; a duplicate is answered before anything is
written, so it is never counted twice). `var_sum` is a float running sum, so it can differ
from a rescan's in the last bits; the queries read the exact variance sums of
`hub.stats.variance_totals` instead.

The migration `aggregate_value_totals_0001` creates the table and fills it from the per-key
rows (`aggregate_values`) stored before issue 16. `hub.stats.query.load_v2_sums` reads it
when no node filter is set (with one, at most `MAX_NODES` nodes' releases are rescanned,
`hub.stats.rescan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Double, Integer, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from hub.stats.aggregates_db import Base

__all__ = ["AggregateValueTotal", "add_sums"]


class AggregateValueTotal(Base):
    """Sums over the v2 releases of one (month, region, key)."""

    __tablename__ = "aggregate_value_totals"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value_sum: Mapped[int] = mapped_column(BigInteger)
    var_sum: Mapped[float] = mapped_column(Double)
    nodes: Mapped[int] = mapped_column(Integer)


def _upsert(conn: AsyncConnection) -> Any:
    mod: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = mod.insert(AggregateValueTotal)
    t = AggregateValueTotal
    return stmt.on_conflict_do_update(
        index_elements=["month", "region", "key"],
        set_={
            "value_sum": t.value_sum + stmt.excluded.value_sum,
            "var_sum": t.var_sum + stmt.excluded.var_sum,
            "nodes": t.nodes + stmt.excluded.nodes,
        },
    )


async def add_sums(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add pre-summed rows (month, region, key, value_sum, var_sum, nodes; one per key) of
    a batch of stored v2 releases to the running sums."""
    await conn.execute(_upsert(conn), list(rows))
