"""Audit anchors: the newest signed audit head each node sent (`hub.relay.audit_anchors`).

Revision ID: audit_anchor_0001
Revises: 0001_hub_core
Create Date: 2026-12-01

A branch of its own (`audit_anchor`) off the hub core. One row per node: seq, hash,
signing time, signature and key id of its audit head; no entry or record content.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_anchor_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("audit_anchor",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_audit_anchor",
        sa.Column("node_id", sa.String(63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(43), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_hub_audit_anchor"),
    )


def downgrade() -> None:
    op.drop_table("hub_audit_anchor")
