"""Node core: users, sessions, API tokens, encounters, follow-ups, disclosures, audit, settings.

Revision ID: 0001_node_core
Revises:
Create Date: 2026-11-26

Other features branch off this revision: `down_revision = "0001_node_core"` and their own
`branch_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen at this revision (a migration imports nothing from the application: a later change
# of node.core.vocabulary or node.core.db must not change what this revision creates; a
# vocabulary change gets a revision of its own, e.g. follow_up_transferred_0001).
# sha256_b64u(b"peernet/v1/audit-genesis")
GENESIS_HASH = "mEv8yerrykPyw5SOR5OiZ7HiPIL2HbYsioKp0TUKbF8"
ROLE = ("peer_supporter", "coordinator", "admin", "auditor")
DURATION_BUCKET = ("<15m", "15-30m", "30-60m", "1-2h", ">2h")
ACTIVATION_TYPE = ("self", "supervisor", "post_critical_incident", "peer_outreach", "interagency")
INTERVENTION = ("one_on_one", "defusing", "debriefing", "demobilization", "family_support",
                "follow_up")
RECIPIENT_DISCIPLINE = ("fire", "ems", "dispatch_911", "law_enforcement", "corrections", "other")
RECIPIENT_CATEGORY = ("own_agency", "other_agency", "family", "other_staff")
REFERRAL = ("eap", "clinician", "chaplain", "crisis_line", "other")
FOLLOW_UP_STATUS = ("none", "open", "done", "overdue", "handed_off")
DISCLOSURE_CATEGORY = ("imminent_harm", "mandated_report", "court_order", "consent")

revision: str = "0001_node_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(
        *values, name=name, native_enum=False, create_constraint=True,
        length=max(len(v) for v in values),
    )


def _ms() -> sa.BigInteger:
    return sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", _enum(ROLE, "role"), nullable=False),
        sa.Column("team", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.Column("updated_at", _ms(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(43), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(43), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.Column("expires_at", _ms(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_web_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(43), nullable=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.Column("expires_at", _ms(), nullable=True),
        sa.Column("revoked_at", _ms(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "encounters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.Column("updated_at", _ms(), nullable=False),
        sa.Column("occurred_at", _ms(), nullable=False),
        sa.Column("duration_bucket", _enum(DURATION_BUCKET, "duration_bucket"), nullable=False),
        sa.Column("incident_ref", sa.String(40), nullable=True),
        sa.Column("activation_type", _enum(ACTIVATION_TYPE, "activation_type"), nullable=False),
        sa.Column("intervention", _enum(INTERVENTION, "intervention"), nullable=False),
        sa.Column(
            "recipient_discipline", _enum(RECIPIENT_DISCIPLINE, "recipient_discipline"),
            nullable=False,
        ),
        sa.Column(
            "recipient_category", _enum(RECIPIENT_CATEGORY, "recipient_category"), nullable=False
        ),
        sa.Column("recipient_ref", sa.String(43), nullable=False),
        sa.Column("topics", sa.String(200), nullable=False),
        sa.Column("referral", _enum(REFERRAL, "referral"), nullable=True),
        sa.Column("notice_given", sa.Boolean(), nullable=False),
        sa.Column("supporter_was_witness", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_encounters_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_encounters"),
    )
    op.create_index("ix_encounters_occurred_at", "encounters", ["occurred_at"])
    op.create_index("ix_encounters_recipient_ref", "encounters", ["recipient_ref"])
    op.create_index(
        "ix_encounters_created_by_occurred_at", "encounters", ["created_by", "occurred_at"]
    )
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", _enum(FOLLOW_UP_STATUS, "follow_up_status"), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.Column("updated_at", _ms(), nullable=False),
        sa.Column("completed_at", _ms(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name="fk_follow_ups_encounter_id_encounters",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_follow_ups_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_follow_ups"),
        sa.UniqueConstraint("encounter_id", name="uq_follow_ups_encounter_id"),
    )
    op.create_index(
        "ix_follow_ups_owner_status_due", "follow_ups", ["owner_id", "status", "due_on"]
    )
    op.create_table(
        "disclosures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("category", _enum(DISCLOSURE_CATEGORY, "disclosure_category"), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("notice_given", sa.Boolean(), nullable=False),
        sa.Column("team", sa.String(40), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", _ms(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_disclosures_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_disclosures"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", _ms(), nullable=False),
        sa.Column("actor", sa.String(36), nullable=True),
        sa.Column("role", sa.String(20), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(20), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(400), nullable=False),
        sa.Column("prev_hash", sa.String(43), nullable=False),
        sa.Column("hash", sa.String(43), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(43), nullable=False),
        sa.Column("signed_seq", sa.BigInteger(), nullable=True),
        sa.Column("signed_hash", sa.String(43), nullable=True),
        sa.Column("signed_at", _ms(), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("signature", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _ms(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )


def downgrade() -> None:
    for table in (
        "settings", "audit_head", "audit_log", "disclosures", "follow_ups", "encounters",
        "api_tokens", "web_sessions", "users",
    ):
        op.drop_table(table)
