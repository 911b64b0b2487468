"""PostgreSQL audit appends linked at commit: the staging table and its deferred trigger
(issue 16; `node.core.audit_staged`).

Revision ID: audit_staged_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`audit_staged`) off the node core. The table exists on both engines
(the models match the schema); the function and the trigger only on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_staged_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("audit_staged",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from node.core.audit_staged import CREATE_SQL

    op.create_table(
        "audit_staged",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(36), nullable=True),
        sa.Column("role", sa.String(20), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(20), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("a", sa.LargeBinary(), nullable=False),
        sa.Column("b", sa.LargeBinary(), nullable=False),
        sa.Column("c", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_staged"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for sql in CREATE_SQL:
            op.execute(sql)


def downgrade() -> None:
    from node.core.audit_staged import DROP_SQL

    if op.get_bind().dialect.name == "postgresql":
        for sql in DROP_SQL:
            op.execute(sql)
    op.drop_table("audit_staged")
