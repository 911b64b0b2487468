"""Follow-ups: the stored status `transferred` (issue 21).

Revision ID: follow_up_transferred_0001
Revises: 0001_node_core
Create Date: 2026-12-01

A branch of its own (`follow_up_transferred`) off the node core. A follow-up that another
member agency accepted by consented transfer closes as `transferred`. The status column's
CHECK constraint (and on PostgreSQL its width) is rewritten with the new value; SQLite
rebuilds the table from the frozen definition below.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "follow_up_transferred_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("follow_up_transferred",)
depends_on: str | Sequence[str] | None = None

_NAME = "ck_follow_ups_follow_up_status"
_OLD = ("none", "open", "done", "overdue", "handed_off")
_NEW = (*_OLD, "transferred")


def _frozen(values: tuple[str, ...]) -> sa.Table:
    ms = sa.BigInteger
    return sa.Table(
        "follow_ups", sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(11), nullable=False),
        sa.Column("created_at", ms(), nullable=False),
        sa.Column("updated_at", ms(), nullable=False),
        sa.Column("completed_at", ms(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name="fk_follow_ups_encounter_id_encounters",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_follow_ups_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_follow_ups"),
        sa.UniqueConstraint("encounter_id", name="uq_follow_ups_encounter_id"),
        sa.CheckConstraint(_check(values), name=_NAME),
        sa.Index("ix_follow_ups_owner_status_due", "owner_id", "status", "due_on"),
    )


def _check(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _rewrite(values: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("follow_ups", copy_from=_frozen(values),
                                  recreate="always"):
            pass
        return
    op.execute(f"ALTER TABLE follow_ups DROP CONSTRAINT IF EXISTS {_NAME}")
    op.execute("ALTER TABLE follow_ups ALTER COLUMN status TYPE VARCHAR(11)")
    op.execute(f"ALTER TABLE follow_ups ADD CONSTRAINT {_NAME} CHECK ({_check(values)})")


def upgrade() -> None:
    _rewrite(_NEW)


def downgrade() -> None:
    op.execute("UPDATE follow_ups SET status = 'done' WHERE status = 'transferred'")
    _rewrite(_OLD)
