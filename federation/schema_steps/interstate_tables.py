"""Frozen step: the interstate tables `fed_compact` and `fed_foreign_roster`.

Called by each server's `interstate_0001` revision (branch `interstate`); the runtime tables
are `federation.interstate_tables`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["downgrade_v1", "upgrade_v1"]


def upgrade_v1(op: Any) -> None:
    op.create_table(
        "fed_compact",
        sa.Column("version", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("sha256", sa.String(43), nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("accepted_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_fed_compact"),
    )
    op.create_table(
        "fed_foreign_roster",
        sa.Column("network_id", sa.String(31), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("sha256", sa.String(43), nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("compact_version", sa.BigInteger, nullable=False),
        sa.Column("accepted_ts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("network_id", "version", name="pk_fed_foreign_roster"),
    )


def downgrade_v1(op: Any) -> None:
    op.drop_table("fed_foreign_roster")
    op.drop_table("fed_compact")
