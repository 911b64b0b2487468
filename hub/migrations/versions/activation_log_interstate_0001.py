"""Interstate activation log: name columns wide enough for `<network>/<node_id>`.

Revision ID: activation_log_interstate_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`activation_log_interstate`) off the hub core, which created
`hub_activation_log`. `requester`, `responder` and `reported_by` grow from 63 to 95
characters (a 31-character network id, `/`, a 63-character node id) so both hubs of an
interstate thread can log its parties qualified (`hub.relay.activation_log`). SQLite does
not enforce VARCHAR lengths: nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "activation_log_interstate_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("activation_log_interstate",)
depends_on: str | Sequence[str] | None = None

_COLS = (("requester", False), ("responder", True), ("reported_by", False))


def _widen(old: int, new: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, nullable in _COLS:
        op.alter_column("hub_activation_log", name, existing_type=sa.String(old),
                        type_=sa.String(new), existing_nullable=nullable)


def upgrade() -> None:
    _widen(63, 95)


def downgrade() -> None:
    _widen(95, 63)
