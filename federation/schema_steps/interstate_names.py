"""Name columns wide enough for a qualified name `<network>/<node_id>` (WIRE section 16).

Across networks the inbox dedupes by the *qualified* sender and the outbox queues to the
qualified destination (`federation.interstate_runtime`), so `fed_inbox.from_node` and
`fed_outbox.destination` grow from 63 to 95 characters (a 31-character network id, `/`, a
63-character node id); the hub's relay queue (`hub_relay.destination`, `.from_node`) too.
Without it PostgreSQL would refuse a long qualified name mid-batch, failing the whole batch
on every retry. SQLite does not enforce VARCHAR lengths: nothing changes there.

`widen_v1(op, tables)` / `narrow_v1(op, tables)` are the frozen steps the servers'
`interstate_names_0001` revisions call.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["FED_NAME_COLUMNS", "NAME_LENGTH", "narrow_v1", "widen_v1"]

NAME_LENGTH = 95  # len("<31-character network id>/<63-character node id>")
FED_NAME_COLUMNS = (("fed_inbox", "from_node"), ("fed_outbox", "destination"))


def _alter(op: Any, columns: tuple[tuple[str, str], ...], old: int, new: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in columns:
        op.alter_column(table, column, existing_type=sa.String(old), type_=sa.String(new),
                        existing_nullable=False)


def widen_v1(op: Any, columns: tuple[tuple[str, str], ...] = FED_NAME_COLUMNS) -> None:
    _alter(op, columns, 63, NAME_LENGTH)


def narrow_v1(op: Any, columns: tuple[tuple[str, str], ...] = FED_NAME_COLUMNS) -> None:
    _alter(op, columns, NAME_LENGTH, 63)
