"""Interstate tables on the node: accepted compacts and other networks' rosters.

Revision ID: interstate_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`interstate`) off the node core. The schema step lives in
`federation.interstate_tables` (shared with the other server, frozen).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.interstate_tables import downgrade_v1, upgrade_v1

revision: str = "interstate_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("interstate",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_v1(op)


def downgrade() -> None:
    downgrade_v1(op)
