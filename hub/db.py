"""The hub's tables and its database handle.

Tables of the core (revision `0001_hub_core`): the relay queue (`hub.relay.forwarding`) and the
central activation log (`hub.relay.activation_log`), both on `Base.metadata`. The federation tables
(inbox, outbox, roster, alarms; `federation.store`) come in the `federation` branch.

Adding tables (other features, e.g. aggregates, stats, users): define them on `hub.db.Base`
in your own module, add its dotted name to `TABLE_MODULES` (Alembic's env.py imports them
all), and add a migration revision with `down_revision = "0001_hub_core"` and a unique
`branch_labels`.

`Database` is the shared one (`federation.database.Database`): `write()` takes the write
lock at the start of the transaction on SQLite (an in-process queue plus `BEGIN IMMEDIATE`),
a plain transaction on PostgreSQL; SAVEPOINTs work on both (the inbox runs each message
handler in one).
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from federation.database import NAMING, Database

__all__ = ["TABLE_MODULES", "Base", "Database", "import_table_modules"]


# Modules defining tables on Base.metadata (imported by migrations/env.py).
TABLE_MODULES: list[str] = ["hub.relay.forwarding", "hub.relay.activation_log",
                            "hub.stats.aggregates", "hub.stats.aggregates_workload",
                            "hub.stats.workload_totals",
                            "hub.users.accounts", "hub.oidc.users",
                            "hub.relay.audit_anchors", "hub.stats.rounds",
                            "hub.national.store"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


