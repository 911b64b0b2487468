"""Started OpenID Connect sign-in flows of the hub (`hub_oidc_pending_flows`,
`federation.webkit.oidc_flows`).

Revision ID: hub_oidc_pending_flows_0001
Revises: 0001_hub_core
Create Date: 2026-12-04

A branch of its own (`hub_oidc_pending_flows`) off the hub core (issue 16 item 2): the
flows leave process memory so any hub process over the database finishes them. The schema
is frozen here: `id` is SHA-256 of the flow id (base64url, 43 characters), `sealed` the
flow's secrets in a SecretBox, `created` seconds (indexed: expiry and oldest-first
trimming).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hub_oidc_pending_flows_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("hub_oidc_pending_flows",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_oidc_pending_flows",
        sa.Column("id", sa.String(43), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hub_oidc_pending_flows"),
    )
    op.create_index("ix_hub_oidc_pending_flows_created", "hub_oidc_pending_flows",
                    ["created"])


def downgrade() -> None:
    op.drop_index("ix_hub_oidc_pending_flows_created", table_name="hub_oidc_pending_flows")
    op.drop_table("hub_oidc_pending_flows")
