"""Activations: messages that arrive before their request, and a note on merged history.

Revision ID: 0004_activation_early
Revises: 0002_activations
Create Date: 2026-11-26

On the `activations` branch. Federation delivers exactly once but not in order, so inbound
activation messages are merged (see `node.activation.states.merge`): `activation_events`
gains a `note` (a skipped step, a stale message), and `activation_early` holds a message
whose request has not arrived yet until it does (or its delivery window ends).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_activation_early"
down_revision: str | None = "0002_activations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("activation_events") as batch:
        batch.add_column(sa.Column("note", sa.String(200), nullable=True))
    op.create_table(
        "activation_early",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("peer", sa.String(63), nullable=False),
        sa.Column("thread_id", sa.String(26), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("msg_type", sa.String(32), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("in_reply_to", sa.String(26), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_activation_early"),
        sa.UniqueConstraint("peer", "msg_id", name="uq_activation_early_peer_msg"),
    )
    op.create_index(
        "ix_activation_early_peer_thread", "activation_early", ["peer", "thread_id"]
    )
    op.create_index("ix_activation_early_expires_ts", "activation_early", ["expires_ts"])


def downgrade() -> None:
    op.drop_index("ix_activation_early_expires_ts", table_name="activation_early")
    op.drop_index("ix_activation_early_peer_thread", table_name="activation_early")
    op.drop_table("activation_early")
    with op.batch_alter_table("activation_events") as batch:
        batch.drop_column("note")
