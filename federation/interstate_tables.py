"""Interstate tables shared by the node and the hub: accepted compacts and foreign rosters.

On their own `MetaData` (as `federation.login_throttle`), so a server without the
interstate branch (the helper) carries none of them and schema comparisons of the core
federation tables stay as they were.

- `fed_compact`: every accepted compact version (the signed document bytes as received,
  re-encoded canonically), like `fed_roster`.
- `fed_foreign_roster`: every accepted roster version of another member network,
  `(network_id, version)` unique; each was verified against the board the compact named for
  that network when it was stored (`federation.foreign_rosters`).

The frozen schema step each server's `interstate_0001` revision calls (branch `interstate`,
off the server's base revision) is `federation.schema_steps.interstate_tables`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table

from federation.database import NAMING

__all__ = ["METADATA", "compacts", "foreign_rosters"]

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

