"""Federation tables on the helper: inbox, outbox, roster versions, alarms.

Revision ID: federation_0001
Revises: 0001_helper_core
Create Date: 2026-11-26

The schema step lives in `federation.schema_steps.federation_tables` (shared with the node
and the hub, frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.federation_tables import downgrade_v1, upgrade_v1

revision: str = "federation_0001"
down_revision: str | None = "0001_helper_core"
branch_labels: str | Sequence[str] | None = ("federation",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_v1(op)


def downgrade() -> None:
    downgrade_v1(op)
