"""Interstate names on the node: inbox and outbox name columns hold `<network>/<node_id>`
(95 characters; `federation.schema_steps.interstate_names`).

Revision ID: interstate_names_0001
Revises: federation_0002
Create Date: 2026-12-04

A branch of its own (`interstate_names`) after the federation tables exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from federation.schema_steps.interstate_names import narrow_v1, widen_v1

revision: str = "interstate_names_0001"
down_revision: str | None = "federation_0002"
branch_labels: str | Sequence[str] | None = ("interstate_names",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    widen_v1(op)


def downgrade() -> None:
    narrow_v1(op)
