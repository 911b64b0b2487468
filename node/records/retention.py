"""Retention: purge encounters older than N days (their follow-ups go with them).

`days` is a parameter: the node's default is `retention_days` in its settings; the roster's
policy will bound it (the caller passes the bounded value). The purge and its audit entry
(`retention.purge` with the count and the days, never any content) are one transaction.
"""

from __future__ import annotations

from sqlalchemy import delete

from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, table_of

__all__ = ["DAY_MS", "purge_encounters"]

DAY_MS = 86_400_000
E = table_of(Encounter)


async def purge_encounters(ctx: NodeContext, days: int, actor: Principal | None = None) -> int:
    """Delete encounters that occurred more than `days` days ago; returns how many."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = ctx.now()
    cutoff = now - days * DAY_MS
    async with ctx.db.write() as conn:
        result = await conn.execute(delete(E).where(E.c.occurred_at < cutoff))
        count = int(result.rowcount or 0)
        await audit.append(conn, ts=now, action="retention.purge", actor=actor,
                           target_type="encounters", detail={"count": count, "days": days})
    return count
