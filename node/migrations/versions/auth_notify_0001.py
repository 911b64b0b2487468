"""PostgreSQL: notify every node process when users or API tokens change.

Revision ID: auth_notify_0001
Revises: 0001_node_core
Create Date: 2026-12-04

A branch of its own (`auth_notify`) off the node core. Statement-level triggers on `users`
and `api_tokens` send `NOTIFY peernet_auth` in the changing transaction (delivered at its
commit), so each process's token cache (`node.core.auth_cache`) forgets its lookups
whatever made the change. An insert needs no notice: a lookup that found nothing is not
kept. Nothing on SQLite (one serving process per file). The SQL is frozen here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "auth_notify_0001"
down_revision: str | None = "0001_node_core"
branch_labels: str | Sequence[str] | None = ("auth_notify",)
depends_on: str | Sequence[str] | None = None

_TABLES = ("users", "api_tokens")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION peernet_auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN PERFORM pg_notify('peernet_auth', ''); RETURN NULL; END $$"
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_auth_notify AFTER UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION peernet_auth_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_auth_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS peernet_auth_notify()")
