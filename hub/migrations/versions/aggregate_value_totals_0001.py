"""Running per-(month, region, key) sums of workload (v2) releases, filled from what is stored.

Revision ID: aggregate_value_totals_0001
Revises: 0001_hub_core
Create Date: 2026-12-05

A branch of its own (`aggregate_value_totals`) off the hub core; it depends on
`aggregate_values_0001` because it backfills from `aggregate_values` (the v2 releases stored
before the sums were kept). See `hub.stats.workload_totals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "aggregate_value_totals_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("aggregate_value_totals",)
depends_on: str | Sequence[str] | None = ("aggregate_values_0001",)


def upgrade() -> None:
    op.create_table(
        "aggregate_value_totals",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value_sum", sa.BigInteger(), nullable=False),
        sa.Column("var_sum", sa.Double(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "region", "key", name="pk_aggregate_value_totals"),
    )
    op.execute(
        "INSERT INTO aggregate_value_totals (month, region, key, value_sum, var_sum, nodes) "
        "SELECT month, region, key, SUM(value), SUM(variance), COUNT(*) "
        "FROM aggregate_values GROUP BY month, region, key"
    )


def downgrade() -> None:
    op.drop_table("aggregate_value_totals")
