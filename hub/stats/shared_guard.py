"""A node-month counts once: in a local release or in a shared round, never both.

Why: a node in shared mode sends its month as two shares and never as a local release
(`node.privacy.shared`); a node that did both would be counted twice in the board's figures
(once in its region's shared sum, once in the local v2 or v1 sums), and two noisy views of
one month also spend its budget twice. The hub therefore refuses a local release for a
node-month it holds a share for (`already_shared`, with an alarm row, nothing stored), and
the statistics leave out a published shared region-month whose contributors also released
locally (`hub.stats.shared_sums`), with a warning, rather than add it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.stats.rounds import HubShare

__all__ = ["holds_share"]


async def holds_share(conn: AsyncConnection, node_id: str, month: str) -> bool:
    """Whether the hub holds a share of this node-month (it went, or goes, into a round)."""
    row = (await conn.execute(select(HubShare.node_id).where(
        HubShare.node_id == node_id, HubShare.month == month))).first()
    return row is not None
