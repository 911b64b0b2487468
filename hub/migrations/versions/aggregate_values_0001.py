"""Workload (v2) release values: one row per node-month and key with its noise variance.

Revision ID: aggregate_values_0001
Revises: 0001_hub_core
Create Date: 2026-12-01

A branch of its own (`aggregate_values`) off the hub core; see
`hub.stats.aggregates_workload`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "aggregate_values_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("aggregate_values",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_values",
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("variance", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "month", "key", name="pk_aggregate_values"),
    )
    op.create_index("ix_aggregate_values_month_region", "aggregate_values", ["month", "region"])


def downgrade() -> None:
    op.drop_table("aggregate_values")
