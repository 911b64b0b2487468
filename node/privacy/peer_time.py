"""The newest time the node's peers vouch for, so a node clock running ahead cannot call a
month finished by itself (issue 15 item 5).

A node whose clock runs ahead would record the current (or a future) month as finished: an
empty or partial release, and then that month's real data could never be released (one
release per node-month). The node's clock cannot check itself, but every message a peer
sent it carries the sender's time in its ULID `msg_id` (`protocol.ids.ulid_ms`), and the
inbox keeps the recent ones: the hub acks the node's audit anchors every few seconds while
it is up. The newest of them is a lower bound on the true time: the month is over only if
that bound is past its end (`node.privacy.ledger.record_release(peer_ms=...)`).

With an empty inbox (a node that never heard from a peer) there is no evidence either way
and `newest_peer_ms` is None: the node's clock alone decides, as before.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.store import inbox
from protocol.ids import ulid_ms

__all__ = ["newest_peer_ms"]


async def newest_peer_ms(conn: AsyncConnection, own_id: str) -> int | None:
    newest = await conn.scalar(
        select(func.max(inbox.c.msg_id)).where(inbox.c.from_node != own_id)
    )
    return None if newest is None else ulid_ms(str(newest))
