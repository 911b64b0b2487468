"""Login throttle counters on the hub (`login_throttle`, see `federation.login_throttle`).

Revision ID: login_throttle_0001
Revises: 0001_hub_core
Create Date: 2026-11-28

A branch of its own (`login_throttle`) off the hub core. The schema step lives in
`federation.login_throttle` (shared with the node, frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.login_throttle import downgrade_v1, upgrade_v1

revision: str = "login_throttle_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("login_throttle",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_v1(op)


def downgrade() -> None:
    downgrade_v1(op)
