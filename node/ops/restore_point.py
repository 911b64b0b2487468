"""A documented restore point: when the hub's audit anchor may be ahead of the local log.

After `peernet node restore` the log ends where the backup did, plus the `node.restore`
entry; the hub may hold an anchor signed later by the node before it was lost. `peernet
node audit verify` would call that `behind_anchor` (or `anchor_mismatch` once the new log
passes the old anchored entry number), which is exactly what a log cut back by someone
holding the key looks like. The difference is the record: `restore_point` accepts such an
anchor only when the log holds a `node.restore` entry that

- directly follows the head it restored (its `seq` is `restored_seq + 1` and, the chain
  being intact, its `prev_hash` is that head's hash, which its detail repeats),
- lies before the anchored entry (`restored_seq < anchor seq`: the anchor is past the
  restored head, so it belongs to the history the restore dropped), and
- was written after the anchor was signed (`ts >= signed_at`).

Verify then succeeds and says so every time, naming the restore entry, the backup and the
entries of the earlier history that are not in the log; an anchor signed after the restore
must match as always. A restore is thus never silent: someone who cuts the log and calls it
a restore leaves an audited entry that every verify prints, and the hub's older anchor
still shows how far the earlier history went.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from node.core.db import AuditEntry, table_of

__all__ = ["restore_point"]

_entries = table_of(AuditEntry)
RESTORE_ACTION = "node.restore"


async def restore_point(conn: AsyncConnection, anchor_seq: int,
                        anchor_signed_at: int) -> str | None:
    """A sentence naming the documented restore that explains a hub anchor ahead of (or
    differing from) the log, or None when no restore entry does (module docstring)."""
    rows = (await conn.execute(
        select(_entries.c.seq, _entries.c.ts, _entries.c.target_id, _entries.c.detail,
               _entries.c.prev_hash)
        .where(_entries.c.action == RESTORE_ACTION).order_by(_entries.c.seq.desc())
    )).all()
    for row in rows:
        try:
            detail = json.loads(row.detail)
            restored = int(detail["restored_seq"])
            restored_hash = detail["restored_hash"]
            backup_ts = int(detail["backup_ts"])
        except (ValueError, KeyError, TypeError):
            continue
        if row.seq != restored + 1 or row.prev_hash != restored_hash:
            continue
        if restored < anchor_seq and row.ts >= anchor_signed_at:
            when = datetime.fromtimestamp(backup_ts / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
            return (f"documented restore point: the hub's anchor at entry {anchor_seq} predates "
                    f"the restore recorded at entry {row.seq} (backup {row.target_id} of "
                    f"{when}, log restored to entry {restored}); entries {restored + 1} to "
                    f"{anchor_seq} of the earlier history are not in this log")
    return None
