"""OpenID Connect identity links of hub users (`hub_oidc_identities`, `hub.oidc.users`).

Revision ID: hub_oidc_identities_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`hub_oidc_identities`) off the hub core; it needs `hub_users`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hub_oidc_identities_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("hub_oidc_identities",)
depends_on: str | Sequence[str] | None = ("users_0001",)


def upgrade() -> None:
    op.create_table(
        "hub_oidc_identities",
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["hub_users.id"], ondelete="CASCADE",
                                name="fk_hub_oidc_identities_user_id_hub_users"),
        sa.PrimaryKeyConstraint("issuer", "subject", name="pk_hub_oidc_identities"),
        sa.UniqueConstraint("user_id", name="uq_hub_oidc_identities_user_id"),
    )


def downgrade() -> None:
    op.drop_table("hub_oidc_identities")
