"""Interagency activations, their legs and history, and follow-up hand-offs.

Revision ID: 0002_activations
Revises: 0001_node_core
Create Date: 2026-11-26

A branch of its own (`activations`) off the node core; see `node.activation.db`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_activations"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("activations",)
depends_on: str | Sequence[str] | None = None

# Frozen copies of the vocabularies at this revision: a later change needs a revision.
_STATES = (
    "draft", "requested", "offered", "accepted", "declined", "expired", "mobilized",
    "on_scene", "demobilized", "closed", "cancelled",
)
_DISCIPLINES = ("fire", "ems", "dispatch_911", "law_enforcement", "corrections", "other")


def _enum(values: Sequence[str], name: str) -> sa.Enum:
    return sa.Enum(
        *values, name=name, native_enum=False, create_constraint=True,
        length=max(len(v) for v in values),
    )


def upgrade() -> None:
    op.create_table(
        "activations",
        sa.Column("key", sa.Uuid(), nullable=False),
        sa.Column("activation_id", sa.String(26), nullable=False),
        sa.Column("requester", sa.String(63), nullable=False),
        sa.Column("side", _enum(("out", "in"), "activation_side"), nullable=False),
        sa.Column("own_state", _enum(_STATES, "activation_own_state"), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("incident_ref", sa.String(64), nullable=False),
        sa.Column("incident_type", sa.String(32), nullable=False),
        sa.Column("event_ts", sa.BigInteger(), nullable=False),
        sa.Column("expires_ts", sa.BigInteger(), nullable=False),
        sa.Column("peers_needed", sa.Integer(), nullable=False),
        sa.Column("affected_total", sa.Integer(), nullable=False),
        sa.Column("coordinator_id", sa.Uuid(), nullable=True),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coordinator_id"], ["users.id"], name="fk_activations_coordinator_id_users"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_activations"),
        sa.UniqueConstraint("requester", "activation_id", name="uq_activations_requester_aid"),
    )
    op.create_index("ix_activations_expires_ts", "activations", ["expires_ts"])
    op.create_index("ix_activations_side_created", "activations", ["side", "created_at"])
    op.create_table(
        "activation_legs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("activation_key", sa.Uuid(), nullable=False),
        sa.Column("responder", sa.String(63), nullable=False),
        sa.Column("state", _enum(_STATES, "activation_leg_state"), nullable=False),
        sa.Column("request_msg_id", sa.String(26), nullable=True),
        sa.Column("offer_msg_id", sa.String(26), nullable=True),
        sa.Column("offer", sa.Text(), nullable=True),
        sa.Column("offer_peers", sa.Integer(), nullable=False),
        sa.Column("offered_by", sa.Uuid(), nullable=True),
        sa.Column("accept_msg_id", sa.String(26), nullable=True),
        sa.Column("accepted_at", sa.BigInteger(), nullable=True),
        sa.Column("decline_reason", sa.String(32), nullable=True),
        sa.Column("declined_by", sa.String(63), nullable=True),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("cancelled_by", sa.String(63), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activation_key"], ["activations.key"],
            name="fk_activation_legs_activation_key_activations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offered_by"], ["users.id"], name="fk_activation_legs_offered_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_activation_legs"),
        sa.UniqueConstraint(
            "activation_key", "responder", name="uq_activation_legs_responder"
        ),
    )
    op.create_index(
        "ix_activation_legs_activation_key", "activation_legs", ["activation_key"]
    )
    op.create_index("ix_activation_legs_offer_msg_id", "activation_legs", ["offer_msg_id"])
    op.create_index("ix_activation_legs_state", "activation_legs", ["state"])
    op.create_table(
        "activation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("activation_key", sa.Uuid(), nullable=False),
        sa.Column("responder", sa.String(63), nullable=True),
        sa.Column("state", _enum(_STATES, "activation_event_state"), nullable=False),
        sa.Column("actor_node", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activation_key"], ["activations.key"],
            name="fk_activation_events_activation_key_activations", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_activation_events"),
    )
    op.create_index(
        "ix_activation_events_activation_key", "activation_events", ["activation_key"]
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("activation_id", sa.String(26), nullable=False),
        sa.Column("requester", sa.String(63), nullable=False),
        sa.Column("direction", _enum(("out", "in"), "handoff_direction"), nullable=False),
        sa.Column("peer", sa.String(63), nullable=False),
        sa.Column("msg_id", sa.String(26), nullable=False),
        sa.Column("discipline", _enum(_DISCIPLINES, "handoff_discipline"), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("note_ct", sa.LargeBinary(), nullable=True),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("status", _enum(("open", "done"), "handoff_status"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["users.id"], name="fk_handoffs_assigned_to_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_handoffs"),
        sa.UniqueConstraint("peer", "msg_id", name="uq_handoffs_peer_msg"),
    )
    op.create_index("ix_handoffs_activation_id", "handoffs", ["activation_id"])
    op.create_index("ix_handoffs_assigned_status", "handoffs", ["assigned_to", "status"])


def downgrade() -> None:
    for table in ("handoffs", "activation_events", "activation_legs", "activations"):
        op.drop_table(table)
