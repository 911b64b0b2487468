"""Encounter amendments (issue 17 item 4): `encounter_amendments`.

Revision ID: encounter_amendments_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`encounter_amendments`) off the node core. See
`node.records.amendment_db` for what a row holds and `node.records.amendments` for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "encounter_amendments_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("encounter_amendments",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "encounter_amendments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("amended_by", sa.Uuid(), nullable=False),
        sa.Column("amended_at", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.String(300), nullable=False),
        sa.Column("old_values", sa.Text(), nullable=False),
        sa.Column("new_values", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(43), nullable=False),
        sa.ForeignKeyConstraint(["encounter_id"], ["encounters.id"], ondelete="CASCADE",
                                name="fk_encounter_amendments_encounter_id_encounters"),
        sa.ForeignKeyConstraint(["amended_by"], ["users.id"],
                                name="fk_encounter_amendments_amended_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_encounter_amendments"),
    )
    op.create_index("ix_encounter_amendments_encounter_id_amended_at", "encounter_amendments",
                    ["encounter_id", "amended_at"])


def downgrade() -> None:
    op.drop_index("ix_encounter_amendments_encounter_id_amended_at",
                  table_name="encounter_amendments")
    op.drop_table("encounter_amendments")
