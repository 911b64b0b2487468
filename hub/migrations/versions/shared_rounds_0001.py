"""Shared aggregation at the hub: its shares, rounds and published region-months.

Revision ID: shared_rounds_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`shared_rounds`) off the hub core; see `hub.stats.rounds`. No table here
holds a record or a node's vector: one uniformly random share per node-month, and noisy sums.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shared_rounds_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("shared_rounds",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_shares",
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("body_sha256", sa.String(43), nullable=False),
        sa.Column("share", sa.LargeBinary(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "month", name="pk_hub_shares"),
    )
    op.create_index("ix_hub_shares_month", "hub_shares", ["month"])
    op.create_table(
        "hub_rounds",
        sa.Column("round_id", sa.String(26), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("set_sha256", sa.String(43), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("round_id", name="pk_hub_rounds"),
    )
    op.create_index("ix_hub_rounds_month", "hub_rounds", ["month"])
    op.create_table(
        "shared_figures",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("variances_json", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Text(), nullable=False),
        sa.Column("round_id", sa.String(26), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", "region", name="pk_shared_figures"),
    )


def downgrade() -> None:
    op.drop_table("shared_figures")
    op.drop_index("ix_hub_rounds_month", table_name="hub_rounds")
    op.drop_table("hub_rounds")
    op.drop_index("ix_hub_shares_month", table_name="hub_shares")
    op.drop_table("hub_shares")
