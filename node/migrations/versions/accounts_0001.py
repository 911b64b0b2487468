"""Accounts: forced password change after a reset, and what a user's sessions page shows.

Revision ID: accounts_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`accounts`) off the node core (issue 17 item 3; `node.accounts`):

- `users.must_change_password`: set by an admin's reset; until the user picks a new
  password every page sends them to the change page and the API refuses
  `password_change_required`;
- `web_sessions.last_seen_at` and `web_sessions.address`: when a session was last used and
  the client address it logged in from, so a user can tell their sessions apart and end one.
  Sessions from before this revision show neither (NULL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "accounts_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("accounts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("address", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("address")
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
