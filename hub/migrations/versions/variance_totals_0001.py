"""Exact running sums of release noise variances and release counts, filled from what is stored.

Revision ID: variance_totals_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`variance_totals`) off the hub core. It fills the sums from the releases
already stored (v1: each release's variance; v2: each group's, read once per node-month from
its per-key rows), from whichever of those tables exists: one created after this revision
starts empty, so there is nothing to fill from it (no `depends_on`, which alembic cannot
resolve here with two sibling branches). See `hub.stats.variance_totals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "variance_totals_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("variance_totals",)
depends_on: str | Sequence[str] | None = None

_V1 = "peernet.monthly/v1"


def upgrade() -> None:
    table = op.create_table(
        "aggregate_variance_totals",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("part", sa.String(64), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("var_exact", sa.String(400), nullable=False),
        sa.Column("var_sum", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("month", "region", "part", name="pk_aggregate_variance_totals"),
    )
    bind = op.get_bind()
    sums: dict[tuple[str, str, str], tuple[int, Fraction]] = {}

    def add(key: tuple[str, str, str], variance: float) -> None:
        n, v = sums.get(key, (0, Fraction(0)))
        sums[key] = (n + 1, v + Fraction(variance))

    tables = set(sa.inspect(bind).get_table_names())
    v1_rows: Any = [] if "aggregate_releases" not in tables else bind.execute(sa.text(
            "SELECT month, region, variance FROM aggregate_releases WHERE schema_name = :s"),
            {"s": _V1})
    for month, region, variance in v1_rows:
        add((month, region, "v1"), float(variance))
    v2_rows: Any = [] if "aggregate_values" not in tables else bind.execute(sa.text(
        "SELECT month, region, group_name, MIN(variance) FROM aggregate_values "
        "GROUP BY node_id, month, region, group_name"))
    for month, region, group, variance in v2_rows:
        add((month, region, group), float(variance))
    if sums and table is not None:
        op.bulk_insert(table, [
            {"month": m, "region": r, "part": p, "nodes": n,
             "var_exact": f"{v.numerator}/{v.denominator}", "var_sum": float(v)}
            for (m, r, p), (n, v) in sorted(sums.items())])


def downgrade() -> None:
    op.drop_table("aggregate_variance_totals")
