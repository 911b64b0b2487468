"""Helper core: shares per (node, month), answers per (month, group), rounds answered.

Revision ID: 0001_helper_core
Revises:
Create Date: 2026-12-04

Other features branch off this revision (`down_revision = "0001_helper_core"`, their own
`branch_labels`); the federation tables come in the `federation` branch. See `helper.store`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_helper_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "helper_shares",
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("body_sha256", sa.String(43), nullable=False),
        sa.Column("share", sa.LargeBinary(), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "month", name="pk_helper_shares"),
    )
    op.create_index("ix_helper_shares_month", "helper_shares", ["month"])
    op.create_table(
        "helper_answers",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("group_id", sa.String(63), nullable=False),
        sa.Column("nodes", sa.Text(), nullable=False),
        sa.Column("noisy_sum", sa.Text(), nullable=False),
        sa.Column("round_id", sa.String(26), nullable=False),
        sa.Column("answered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("month", "group_id", name="pk_helper_answers"),
    )
    op.create_table(
        "helper_rounds",
        sa.Column("round_id", sa.String(26), nullable=False),
        sa.Column("hub_id", sa.String(63), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("set_sha256", sa.String(43), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("answered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("round_id", name="pk_helper_rounds"),
    )


def downgrade() -> None:
    op.drop_table("helper_rounds")
    op.drop_table("helper_answers")
    op.drop_index("ix_helper_shares_month", table_name="helper_shares")
    op.drop_table("helper_shares")
