"""Notifications: preferences, the on-duty list, events and their deliveries (issue 18).

Revision ID: notify_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`notify`) off the node core; the tables are described in
`node.notify.db`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notify_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("notify",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ms = sa.BigInteger
    op.create_table(
        "notify_prefs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("channels", sa.String(40), nullable=False),
        sa.Column("webhook_url", sa.String(400), nullable=True),
        sa.Column("webhook_secret", sa.String(80), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("urgent_in_quiet", sa.Boolean(), nullable=False),
        sa.Column("updated_at", ms(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_notify_prefs_user_id_users",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name="pk_notify_prefs"),
    )
    op.create_table(
        "notify_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(60), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("secret", sa.String(80), nullable=True),
        sa.Column("kinds", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", ms(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notify_endpoints"),
    )
    op.create_table(
        "notify_events",
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("created_at", ms(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_notify_events"),
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_key", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(50), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", ms(), nullable=False),
        sa.Column("batch", sa.String(120), nullable=True),
        sa.Column("held", sa.String(10), nullable=True),
        sa.Column("last_error", sa.String(40), nullable=True),
        sa.Column("created_at", ms(), nullable=False),
        sa.Column("sent_at", ms(), nullable=True),
        sa.ForeignKeyConstraint(["event_key"], ["notify_events.key"],
                                name="fk_notify_deliveries_event_key_notify_events",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_notify_deliveries"),
        sa.UniqueConstraint("event_key", "recipient", "channel",
                            name="uq_notify_deliveries_event_key"),
    )
    op.create_index("ix_notify_deliveries_state_next_at", "notify_deliveries",
                    ["state", "next_at"])
    op.create_index("ix_notify_deliveries_subject", "notify_deliveries", ["subject"])


def downgrade() -> None:
    op.drop_table("notify_deliveries")
    op.drop_table("notify_events")
    op.drop_table("notify_endpoints")
    op.drop_table("notify_prefs")
