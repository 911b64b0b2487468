"""Hub users: a forced password change after a reset (`hub.users.passwords`).

Revision ID: users_reset_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`users_reset`) off the hub core that depends on `users_0001` (the
table it changes). `hub_users.must_change_password`: set by `peernet hub user
reset-password` or the operator's users page; until the user picks a new password the
pages send them to `/account/password` and the API answers `password_change_required`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "users_reset_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("users_reset",)
depends_on: str | Sequence[str] | None = ("users_0001",)


def upgrade() -> None:
    with op.batch_alter_table("hub_users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("hub_users") as batch:
        batch.drop_column("must_change_password")
