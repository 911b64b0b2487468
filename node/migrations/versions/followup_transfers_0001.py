"""Consented follow-up transfers between member agencies (issue 21).

Revision ID: followup_transfers_0001
Revises: 0001_node_core
Create Date: 2026-12-01

A branch of its own (`followup_transfers`) off the node core; it needs the `handoffs` table
(the sealed note of a received transfer lives there) and the `transferred` follow-up status.
See `node.activation.transfer_db`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "followup_transfers_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("followup_transfers",)
depends_on: str | Sequence[str] | None = ("0002_activations", "follow_up_transferred_0001")


def _enum(name: str, *values: str) -> sa.Enum:
    # Frozen values at this revision: a later vocabulary change needs a revision.
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True,
                   length=max(len(v) for v in values))


_DISCIPLINES = ("fire", "ems", "dispatch_911", "law_enforcement", "corrections", "other")
_INTERVENTIONS = ("one_on_one", "defusing", "debriefing", "demobilization", "family_support",
                  "follow_up")
_REASONS = ("not_a_member", "no_capacity", "outside_discipline", "already_supported", "policy",
            "other")


def upgrade() -> None:
    op.create_table(
        "followup_transfer_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("follow_up_id", sa.Uuid(), nullable=False),
        sa.Column("to_agency", sa.String(63), nullable=False),
        sa.Column("asked_by", sa.Uuid(), nullable=False),
        sa.Column("consented_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["follow_up_id"], ["follow_ups.id"], ondelete="CASCADE",
                                name="fk_followup_transfer_consents_follow_up_id_follow_ups"),
        sa.ForeignKeyConstraint(["asked_by"], ["users.id"],
                                name="fk_followup_transfer_consents_asked_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_followup_transfer_consents"),
    )
    op.create_index("ix_followup_transfer_consents_follow_up_id",
                    "followup_transfer_consents", ["follow_up_id"])
    op.create_table(
        "followup_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("direction", _enum("transfer_direction", "out", "in"), nullable=False),
        sa.Column("peer", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("follow_up_id", sa.Uuid(), nullable=True),
        sa.Column("handoff_id", sa.Uuid(), nullable=True),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("intervention", _enum("transfer_intervention", *_INTERVENTIONS),
                  nullable=False),
        sa.Column("discipline", _enum("transfer_discipline", *_DISCIPLINES), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("consent_ts", sa.BigInteger(), nullable=False),
        sa.Column("answer_by", sa.BigInteger(), nullable=False),
        sa.Column("state", _enum("transfer_state", "pending", "accepted", "declined",
                                 "expired"), nullable=False),
        sa.Column("reason", _enum("transfer_reason", *_REASONS), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["follow_up_id"], ["follow_ups.id"], ondelete="CASCADE",
                                name="fk_followup_transfers_follow_up_id_follow_ups"),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE",
                                name="fk_followup_transfers_handoff_id_handoffs"),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["followup_transfer_consents.id"],
            name="fk_followup_transfers_consent_id_followup_transfer_consents"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"],
                                name="fk_followup_transfers_owner_id_users"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name="fk_followup_transfers_created_by_users"),
        sa.PrimaryKeyConstraint("id", name="pk_followup_transfers"),
        sa.UniqueConstraint("direction", "peer", "msg_id", name="uq_followup_transfers_msg"),
    )
    op.create_index("ix_followup_transfers_follow_up_id", "followup_transfers",
                    ["follow_up_id"])
    op.create_index("ix_followup_transfers_state_answer_by", "followup_transfers",
                    ["state", "answer_by"])


def downgrade() -> None:
    op.drop_table("followup_transfers")
    op.drop_table("followup_transfer_consents")
