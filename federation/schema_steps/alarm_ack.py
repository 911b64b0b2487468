"""Frozen step: `fed_alarm` gains `reason` and the acknowledgement columns (who, why).

Called by each server's `fed_alarm_ack_0001` revision (branch `fed_alarm_ack`); the runtime
reading and writing them is `federation.roster_alarms`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["downgrade_alarm_ack", "upgrade_alarm_ack"]


def upgrade_alarm_ack(op: Any) -> None:
    op.add_column("fed_alarm", sa.Column("reason", sa.Text, nullable=True))
    op.add_column("fed_alarm", sa.Column("acknowledged_by", sa.String(63), nullable=True))
    op.add_column("fed_alarm", sa.Column("ack_note", sa.String(500), nullable=True))


def downgrade_alarm_ack(op: Any) -> None:
    with op.batch_alter_table("fed_alarm") as batch:  # SQLite: drop by table copy
        batch.drop_column("ack_note")
        batch.drop_column("acknowledged_by")
        batch.drop_column("reason")
