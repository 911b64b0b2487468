"""PostgreSQL audit appends linked at commit: the staging table and its deferred trigger
(issue 16; `node.core.audit_staged`).

Revision ID: audit_staged_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`audit_staged`) off the node core. The table exists on both engines
(the models match the schema); the function and the trigger only on PostgreSQL. Their SQL is
frozen here as released: a later change of the trigger is a revision of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_staged_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("audit_staged",)
depends_on: str | Sequence[str] | None = None

CREATE_SQL = (
    """CREATE FUNCTION audit_link_staged() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  h_seq bigint;
  h_hash text;
  n_hash text;
BEGIN
  SELECT seq, hash INTO h_seq, h_hash FROM audit_head WHERE id = 1 FOR UPDATE;
  n_hash := rtrim(translate(encode(sha256(
    NEW.a || convert_to(h_hash, 'UTF8') || NEW.b || convert_to((h_seq + 1)::text, 'UTF8')
    || NEW.c), 'base64'), '+/', '-_'), '=');
  INSERT INTO audit_log (seq, ts, actor, role, action, target_type, target_id, outcome,
                         detail, prev_hash, hash)
  VALUES (h_seq + 1, NEW.ts, NEW.actor, NEW.role, NEW.action, NEW.target_type,
          NEW.target_id, NEW.outcome, NEW.detail, h_hash, n_hash);
  UPDATE audit_head SET seq = h_seq + 1, hash = n_hash WHERE id = 1;
  DELETE FROM audit_staged WHERE id = NEW.id;
  RETURN NULL;
END $$""",
    """CREATE CONSTRAINT TRIGGER audit_staged_link AFTER INSERT ON audit_staged
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_link_staged()""",
)
DROP_SQL = (
    "DROP TRIGGER IF EXISTS audit_staged_link ON audit_staged",
    "DROP FUNCTION IF EXISTS audit_link_staged()",
)


def upgrade() -> None:
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
    if op.get_bind().dialect.name == "postgresql":
        for sql in DROP_SQL:
            op.execute(sql)
    op.drop_table("audit_staged")
