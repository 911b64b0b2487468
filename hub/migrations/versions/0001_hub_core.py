"""Hub core: the relay queue and the central activation log.

Revision ID: 0001_hub_core
Revises:
Create Date: 2026-11-26

Other features branch off this revision: `down_revision = "0001_hub_core"` and their own
`branch_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_hub_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_relay",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(63), nullable=False),
        sa.Column("from_node", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ts", sa.BigInteger, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.UniqueConstraint("from_node", "msg_id", name="uq_hub_relay_from_msg"),
    )
    op.create_index("ix_hub_relay_due", "hub_relay", ["next_attempt_ts"])
    op.create_table(
        "hub_activation_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("activation_id", sa.String(26), nullable=False),
        sa.Column("requester", sa.String(63), nullable=False),
        sa.Column("responder", sa.String(63), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("incident_type", sa.String(32), nullable=False),
        sa.Column("affected", sa.Integer, nullable=False),
        sa.Column("peers_needed", sa.Integer, nullable=False),
        sa.Column("peers_offered", sa.Integer, nullable=False),
        sa.Column("status_ts", sa.BigInteger, nullable=False),
        sa.Column("reported_by", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("received_ts", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_hub_activation_log_activation", "hub_activation_log", ["activation_id", "status_ts"]
    )
    op.create_index("ix_hub_activation_log_status_ts", "hub_activation_log", ["status_ts"])


def downgrade() -> None:
    op.drop_table("hub_activation_log")
    op.drop_table("hub_relay")
