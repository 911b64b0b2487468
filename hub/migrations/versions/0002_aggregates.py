"""Aggregate store: received releases, running per-(month, region, cell) totals, alarms.

Revision ID: 0002_aggregates
Revises: 0001_hub_core
Create Date: 2026-11-26

A branch of its own (`aggregates`) off the hub core; see `hub.stats.aggregates`. No table here
can hold a raw record: only signed noisy releases and sums of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_aggregates"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("aggregates",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_releases",
        sa.Column("release_id", sa.String(26), nullable=False),
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("schema_name", sa.String(64), nullable=False),
        sa.Column("measure", sa.String(10), nullable=False),
        sa.Column("mechanism", sa.String(10), nullable=False),
        sa.Column("scale", sa.String(64), nullable=False),
        sa.Column("variance", sa.Double(), nullable=False),
        sa.Column("budget_spent", sa.String(64), nullable=False),
        sa.Column("per_person_month", sa.Integer(), nullable=False),
        sa.Column("per_cell", sa.Integer(), nullable=False),
        sa.Column("opendp_version", sa.String(32), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("body_sha256", sa.String(43), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("release_id", name="pk_aggregate_releases"),
        sa.UniqueConstraint("node_id", "month", name="uq_aggregate_releases_node_id"),
    )
    op.create_index("ix_aggregate_releases_month", "aggregate_releases", ["month"])
    op.create_table(
        "aggregate_totals",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("cell", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value_sum", sa.BigInteger(), nullable=False),
        sa.Column("var_sum", sa.Double(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "region", "cell", name="pk_aggregate_totals"),
    )
    op.create_table(
        "aggregate_alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("stored_release_id", sa.String(26), nullable=False),
        sa.Column("offered_release_id", sa.String(26), nullable=True),
        sa.Column("offered_body_sha256", sa.String(43), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_aggregate_alarms"),
    )
    op.create_index("ix_aggregate_alarms_node_id", "aggregate_alarms", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_aggregate_alarms_node_id", table_name="aggregate_alarms")
    op.drop_table("aggregate_alarms")
    op.drop_table("aggregate_totals")
    op.drop_index("ix_aggregate_releases_month", table_name="aggregate_releases")
    op.drop_table("aggregate_releases")
