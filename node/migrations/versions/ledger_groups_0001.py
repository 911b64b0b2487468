"""Privacy ledger: workload groups (share and spend per group of a v2 release).

Revision ID: ledger_groups_0001
Revises: 0001_node_core
Create Date: 2026-12-01

A branch of its own (`ledger_groups`) off the node core; see `node.privacy.ledger_groups`.
No foreign key to `release_ledger` (another branch): both are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_groups_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("ledger_groups",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "release_ledger_groups",
        sa.Column("release_id", sa.String(26), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("weight", sa.String(64), nullable=False),
        sa.Column("budget_share", sa.String(64), nullable=False),
        sa.Column("scale", sa.String(64), nullable=False),
        sa.Column("budget_spent", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("release_id", "group_name", name="pk_release_ledger_groups"),
    )


def downgrade() -> None:
    op.drop_table("release_ledger_groups")
