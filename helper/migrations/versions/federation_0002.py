"""Federation tables on the helper: `fed_outbox.carrier` (rows merged into a batch message).

Revision ID: federation_0002
Revises: federation_0001
Create Date: 2026-11-27

The schema step lives in `federation.schema_steps.federation_tables` (shared with the node, frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.federation_tables import downgrade_v2, upgrade_v2

revision: str = "federation_0002"
down_revision: str | None = "federation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_v2(op)


def downgrade() -> None:
    downgrade_v2(op)
