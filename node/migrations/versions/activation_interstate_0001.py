"""Interstate activation: peer columns wide enough for `<network>/<node_id>`, and approval.

Revision ID: activation_interstate_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`activation_interstate`) off the node core, after the activation
tables (`depends_on`). Every column that names an activation's peer (requester, responder,
actor, hand-off peer, early message peer) grows from 63 to 95 characters (a 31-character
network id, `/`, a 63-character node id); the interstate policy and approval tables are
new. See `node.activation.interstate` and `node.activation.approval`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "activation_interstate_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("activation_interstate",)
depends_on: str | Sequence[str] | None = ("0004_activation_early",)

_WIDE = {
    "activations": [("requester", False)],
    "activation_legs": [("responder", False), ("declined_by", True), ("cancelled_by", True)],
    "activation_events": [("responder", True), ("actor_node", False)],
    "activation_early": [("peer", False)],
    "handoffs": [("requester", False), ("peer", False)],
}


def _widen(old: int, new: int) -> None:
    # SQLite does not enforce VARCHAR lengths: nothing to change there (and no table
    # rebuild that could drop the enums' CHECK constraints).
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, cols in _WIDE.items():
        for name, nullable in cols:
            op.alter_column(table, name, existing_type=sa.String(old), type_=sa.String(new),
                            existing_nullable=nullable)


def upgrade() -> None:
    _widen(63, 95)
    op.create_table(
        "activation_interstate_policy",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("require_out", sa.Boolean(), nullable=False),
        sa.Column("require_in", sa.Boolean(), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"],
                                name="fk_activation_interstate_policy_updated_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_activation_interstate_policy"),
    )
    op.create_table(
        "activation_approvals",
        sa.Column("activation_key", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["activation_key"], ["activations.key"], ondelete="CASCADE",
                                name="fk_activation_approvals_activation_key_activations"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"],
                                name="fk_activation_approvals_decided_by_users"),
        sa.PrimaryKeyConstraint("activation_key", name="pk_activation_approvals"),
    )
    op.create_index("ix_activation_approvals_state", "activation_approvals", ["state"])


def downgrade() -> None:
    op.drop_index("ix_activation_approvals_state", table_name="activation_approvals")
    op.drop_table("activation_approvals")
    op.drop_table("activation_interstate_policy")
    _widen(95, 63)
