"""Interstate tables shared by the node and the hub: accepted compacts and foreign rosters.

On their own `MetaData` (as `federation.login_throttle`), so a server without the
interstate branch (the helper) carries none of them and schema comparisons of the core
federation tables stay as they were.

- `fed_compact`: every accepted compact version (the signed document bytes as received,
  re-encoded canonically), like `fed_roster`.
- `fed_foreign_roster`: every accepted roster version of another member network,
  `(network_id, version)` unique; each was verified against the board the compact named for
  that network when it was stored (`federation.foreign_rosters`).

`upgrade_v1` / `downgrade_v1` are the frozen schema step each server's `interstate_0001`
revision calls (branch `interstate`, off the server's base revision).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table

from federation.database import NAMING

__all__ = ["METADATA", "compacts", "downgrade_v1", "foreign_rosters", "upgrade_v1"]

METADATA = MetaData(naming_convention=NAMING)

compacts = Table(
    "fed_compact",
    METADATA,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(43), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("accepted_ts", BigInteger, nullable=False),
)

foreign_rosters = Table(
    "fed_foreign_roster",
    METADATA,
    Column("network_id", String(31), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(43), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("compact_version", BigInteger, nullable=False),  # the compact it verified under
    Column("accepted_ts", BigInteger, nullable=False),
)


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
