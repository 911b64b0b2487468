"""Privacy ledger: one append-only row per node-month release, and its deliveries.

Revision ID: 0003_release_ledger
Revises: 0001_node_core
Create Date: 2026-11-26

A branch of its own (`ledger`) off the node core; see `node.privacy.ledger`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_release_ledger"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("ledger",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "release_ledger",
        sa.Column("release_id", sa.String(26), nullable=False),
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("query_sha256", sa.String(43), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("per_person_month", sa.Integer(), nullable=False),
        sa.Column("per_cell", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(10), nullable=False),
        sa.Column("mechanism", sa.String(10), nullable=False),
        sa.Column("scale", sa.String(64), nullable=False),
        sa.Column("budget_spent", sa.String(64), nullable=False),
        sa.Column("budget_per_year", sa.String(64), nullable=False),
        sa.Column("opendp_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("release_id", name="pk_release_ledger"),
        sa.UniqueConstraint("node_id", "month", name="uq_release_ledger_node_id"),
    )
    op.create_index("ix_release_ledger_year", "release_ledger", ["year"])
    op.create_table(
        "release_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.String(26), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["release_ledger.release_id"],
            name="fk_release_deliveries_release_id_release_ledger",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_release_deliveries"),
    )
    op.create_index(
        "ix_release_deliveries_release_id", "release_deliveries", ["release_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_release_deliveries_release_id", table_name="release_deliveries")
    op.drop_table("release_deliveries")
    op.drop_index("ix_release_ledger_year", table_name="release_ledger")
    op.drop_table("release_ledger")
