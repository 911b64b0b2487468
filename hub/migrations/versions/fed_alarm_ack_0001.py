"""Governance alarms on the hub: a reason in words and an audited acknowledgement.

Revision ID: fed_alarm_ack_0001
Revises: 0001_hub_core
Create Date: 2026-12-01

A branch of its own (`fed_alarm_ack`) off the hub core that needs `fed_alarm` (federation
branch). The schema step lives in `federation.roster_alarms` (shared with the node, frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.alarm_ack import downgrade_alarm_ack, upgrade_alarm_ack

revision: str = "fed_alarm_ack_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("fed_alarm_ack",)
depends_on: str | Sequence[str] | None = ("federation_0001",)


def upgrade() -> None:
    upgrade_alarm_ack(op)


def downgrade() -> None:
    downgrade_alarm_ack(op)
