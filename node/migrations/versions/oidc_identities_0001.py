"""OpenID Connect identity links (`oidc_identities`, see `node.oidc.db`).

Revision ID: oidc_identities_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`oidc_identities`) off the node core (issue 17 item 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "oidc_identities_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("oidc_identities",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_identities",
        sa.Column("issuer", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_login_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_oidc_identities_user_id_users"),
        sa.PrimaryKeyConstraint("issuer", "subject", name="pk_oidc_identities"),
        sa.UniqueConstraint("user_id", name="uq_oidc_identities_user_id"),
    )


def downgrade() -> None:
    op.drop_table("oidc_identities")
