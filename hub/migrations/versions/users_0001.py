"""Hub users: operators and board analysts, browser sessions, API tokens.

Revision ID: users_0001
Revises: 0001_hub_core
Create Date: 2026-11-27

A branch of its own (`users`) off the hub core; see `hub.users.accounts`. Sessions and tokens are
stored as SHA-256 of their values only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "users_0001"
down_revision: str | None = "0001_hub_core"
branch_labels: str | Sequence[str] | None = ("users",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(63), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hub_users"),
        sa.UniqueConstraint("username", name="uq_hub_users_username"),
    )
    op.create_table(
        "hub_sessions",
        sa.Column("id", sa.String(43), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(43), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hub_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["hub_users.id"], ondelete="CASCADE",
                                name="fk_hub_sessions_user_id_hub_users"),
    )
    op.create_index("ix_hub_sessions_user_id", "hub_sessions", ["user_id"])
    op.create_index("ix_hub_sessions_expires_at", "hub_sessions", ["expires_at"])
    op.create_table(
        "hub_api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(43), nullable=False),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_hub_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_hub_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(["user_id"], ["hub_users.id"], ondelete="CASCADE",
                                name="fk_hub_api_tokens_user_id_hub_users"),
    )
    op.create_index("ix_hub_api_tokens_user_id", "hub_api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("hub_api_tokens")
    op.drop_table("hub_sessions")
    op.drop_table("hub_users")
