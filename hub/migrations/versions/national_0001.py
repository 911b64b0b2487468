"""National figures: verified peer state statistics documents and their months
(`hub.national.store`).

Revision ID: national_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`national`) off the hub core. Noisy published figures of other
networks only: no release, no record.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "national_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("national",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_national_document",
        sa.Column("sha256", sa.String(43), nullable=False),
        sa.Column("network_id", sa.String(31), nullable=False),
        sa.Column("hub_id", sa.String(63), nullable=False),
        sa.Column("issued_ts", sa.BigInteger(), nullable=False),
        sa.Column("month_from", sa.String(7), nullable=False),
        sa.Column("month_to", sa.String(7), nullable=False),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_hub_national_document"),
    )
    op.create_table(
        "hub_national_month",
        sa.Column("network_id", sa.String(31), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("issued_ts", sa.BigInteger(), nullable=False),
        sa.Column("document_sha256", sa.String(43), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("network_id", "month", name="pk_hub_national_month"),
    )
    op.create_index("ix_hub_national_month_month", "hub_national_month", ["month"])


def downgrade() -> None:
    op.drop_index("ix_hub_national_month_month", "hub_national_month")
    op.drop_table("hub_national_month")
    op.drop_table("hub_national_document")
