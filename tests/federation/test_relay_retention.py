"""The hub's relay queue is bounded like the inbox (`federation.retention`, issue 22 item 4).

A relayed envelope waits in `hub_relay` until its destination answers or it expires; its
expiry is the sender's choice and may lie fifty years ahead, so a message to an agency that
never comes back would stay and be retried for ever. The hub keeps it at most until its
dedupe horizon (`dedupe_expiry`: 30 days after it was created): by then the destination
refuses it as `expired` anyway (`too_old`), so relaying it longer could never deliver it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from federation.retention import DAY_MS, INBOX_HORIZON_MS
from hub.relay.forwarding import relay_queue
from tests.federation.helpers import envelope, put_batch
from tests.federation.network import HubHandle, Network

NetworkFactory = Callable[..., Awaitable[Network]]
FOREVER = 50 * 365 * DAY_MS


async def _queued(hub: HubHandle) -> list[tuple[str, int]]:
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(relay_queue.c.destination, relay_queue.c.expires_ts))
                ).all()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_never_expiring_relayed_message_to_a_gone_agency_is_dropped_on_the_horizon(
    network: NetworkFactory, db: str
) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    await b.stop()  # gone for good
    created = net.clock.now_ms()
    env = envelope(net, a, b, ttl_ms=FOREVER)
    status, body = await put_batch(a, net.hub.url, net.hub.node_id, [env])
    assert status == 200 and [r["status"] for r in body["results"]] == ["accepted"]
    assert await _queued(net.hub) == [(b.node_id, created + INBOX_HORIZON_MS)]
    await net.hub.relay.run_once()  # b does not answer: kept, backed off
    assert len(await _queued(net.hub)) == 1

    net.clock.advance(INBOX_HORIZON_MS - 60_000)
    await net.hub.relay.run_once()
    assert len(await _queued(net.hub)) == 1  # within the horizon: still tried
    net.clock.advance(60_000 + 10 * 60_000)
    await net.hub.relay.run_once()
    assert await _queued(net.hub) == []
