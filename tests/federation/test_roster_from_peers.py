"""Newer roster versions reach a server from its peers: an envelope naming a version the
receiver does not have is refused (`roster_mismatch`, the sender retries) and the receiver
fetches the chain from the peer that sent it (then from the hub), checked against the
acceptance rules as any roster; at most once per `PEER_ROSTER_FETCH_MS`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from federation.service import PEER_ROSTER_FETCH_MS
from protocol.encoding import sha256_b64u
from protocol.envelope import build_envelope
from protocol.ids import new_ulid
from protocol.messages import RosterRef
from tests.federation.helpers import (
    TEST_BODY,
    TEST_TYPE,
    Recorder,
    counts,
    put_batch,
    send,
    sender_of,
)
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


async def _ahead(network: NetworkFactory) -> tuple[Network, Recorder]:
    """A network where only the first node holds roster version 2."""
    net = await network(3)
    rec = Recorder()
    for node in net.nodes:
        node.on(TEST_TYPE, rec)
    v2 = net.board.sign(net.board.next(net.roster, now=net.clock.now_ms()))
    await net.nodes[0].fed.roster.accept([v2])
    return net, rec


async def test_a_node_fetches_a_newer_roster_from_the_peer_that_named_it(
    network: NetworkFactory,
) -> None:
    net, rec = await _ahead(network)
    a, b, _ = net.nodes
    msg = await send(a, b.node_id)
    await net.settle()
    assert msg not in rec.seen  # refused for now: b does not know version 2
    await _until(lambda: b.fed.state.version == 2)
    assert b.fed.peer_roster_fetches == 1
    net.clock.advance(2_000)  # a's retry after its backoff
    await net.settle()
    assert rec.seen.count(msg) == 1


async def test_the_hub_fetches_a_newer_roster_from_a_node(network: NetworkFactory) -> None:
    net, _ = await _ahead(network)
    a = net.nodes[0]
    await send(a, net.hub.node_id)
    await net.settle()
    await _until(lambda: net.hub.fed.state.version == 2)
    assert net.hub.fed.peer_roster_fetches == 1


async def test_a_version_no_one_has_is_refused_and_fetches_are_limited(
    network: NetworkFactory,
) -> None:
    net, rec = await _ahead(network)
    a, b, _ = net.nodes
    now = net.clock.now_ms()

    def naming(version: int) -> bytes:
        return build_envelope(
            sender=sender_of(a), to=b.node_id, recipient_enc_key=b.keys.enc_public_bytes,
            msg_type=TEST_TYPE, body=TEST_BODY, msg_id=new_ulid(now, os.urandom(10)),
            created_ts=now, expires_ts=now + 3_600_000,
            roster=RosterRef(version=version, sha256=sha256_b64u(b"no such roster")))

    before = await counts(b)
    status, body = await put_batch(a, b.url, b.node_id, [naming(9)])
    assert status == 200
    assert [(r["status"], r["code"]) for r in body["results"]] == [("refused", "roster_mismatch")]
    # b fetched what a has (version 2), checked like any roster; version 9 never came.
    assert b.fed.peer_roster_fetches == 1
    await _until(lambda: b.fed.state.version == 2)
    assert await counts(b) == before and rec.seen == []

    # Named again at once: no second fetch within the period; after it, one more.
    await put_batch(a, b.url, b.node_id, [naming(9)])
    await asyncio.sleep(0.05)
    assert b.fed.peer_roster_fetches == 1
    net.clock.advance(PEER_ROSTER_FETCH_MS)
    await put_batch(a, b.url, b.node_id, [naming(9)])
    assert b.fed.peer_roster_fetches == 2
    await asyncio.sleep(0.05)
    assert b.fed.state.version == 2
