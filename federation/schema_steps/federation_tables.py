"""Frozen schema steps of the federation tables, called from each server's Alembic revision.

The node (`node/migrations/versions/federation_*.py`) and the hub
(`hub/migrations/versions/federation_*.py`) each carry the same revisions in their own
`federation` branch: `federation_0001` calls `upgrade_v1(op)`, `federation_0002`
`upgrade_v2(op)`. A step, once released, never changes: a later schema change adds the next
step and a new revision in both servers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["downgrade_v1", "downgrade_v2", "upgrade_v1", "upgrade_v2"]


def upgrade_v1(op: Any) -> None:
    op.create_table(
        "fed_inbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("from_node", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("msg_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("received_ts", sa.BigInteger, nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("from_node", "msg_id", name="uq_fed_inbox_from_msg"),
    )
    op.create_index("ix_fed_inbox_expires", "fed_inbox", ["expires_ts"])
    op.create_table(
        "fed_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("msg_type", sa.String(32), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=True),
        sa.Column("intent", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ts", sa.BigInteger, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=False),
        sa.Column("sent_ts", sa.BigInteger, nullable=True),
        sa.Column("acked_ts", sa.BigInteger, nullable=True),
        sa.Column("failed_code", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.UniqueConstraint("destination", "msg_id", name="uq_fed_outbox_dest_msg"),
    )
    op.create_index("ix_fed_outbox_due", "fed_outbox", ["state", "next_attempt_ts"])
    op.create_table(
        "fed_roster",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.String(43), nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("accepted_ts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fed_alarm",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(63), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("acknowledged_ts", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_fed_alarm_ts", "fed_alarm", ["ts"])


def downgrade_v1(op: Any) -> None:
    op.drop_index("ix_fed_alarm_ts", table_name="fed_alarm")
    op.drop_table("fed_alarm")
    op.drop_table("fed_roster")
    op.drop_index("ix_fed_outbox_due", table_name="fed_outbox")
    op.drop_table("fed_outbox")
    op.drop_index("ix_fed_inbox_expires", table_name="fed_inbox")
    op.drop_table("fed_inbox")


def upgrade_v2(op: Any) -> None:
    """`fed_outbox.carrier`: the msg_id of the batch message a merged row travels in."""
    op.add_column("fed_outbox", sa.Column("carrier", sa.String(26), nullable=True))


def downgrade_v2(op: Any) -> None:
    with op.batch_alter_table("fed_outbox") as batch:  # SQLite: drop by table copy
        batch.drop_column("carrier")
