"""End-to-end delivery over real servers: direct, via the hub, node and hub restarts,
end-to-end acks, handler refusals (on SQLite and PostgreSQL where it matters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from federation.errors import FederationError
from protocol.errors import Code
from protocol.messages import MessageType
from tests.federation.helpers import TEST_TYPE, Recorder, counts, outbox_rows, send
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]
MINUTE = 60_000


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_direct_delivery_is_acked_end_to_end(network: NetworkFactory, db: str) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    rec = Recorder()
    b.on(TEST_TYPE, rec)
    msg_id = await send(a, b.node_id)
    [row] = await outbox_rows(a)
    assert row.state == "pending" and row.envelope is not None
    await net.settle()
    assert rec.seen == [msg_id]
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done" and row.acked_ts is not None
    [ack] = await outbox_rows(b, "ack")
    assert ack.state == "done"
    assert (await counts(net.hub))["relay"] == 0  # went direct


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_recipient_down_then_restarted_gets_it_once(network: NetworkFactory, db: str) -> None:
    net = await network(2, db=db)
    a, b = net.nodes
    rec = Recorder()
    b.on(TEST_TYPE, rec)
    await b.stop()
    msg_id = await send(a, b.node_id)
    await net.settle()
    # Direct failed, the hub took it; not done until b acks.
    assert (await counts(net.hub))["relay"] == 1
    [row] = await outbox_rows(a)
    assert row.state == "pending" and row.sent_ts is not None
    await b.start()
    net.clock.advance(MINUTE)  # past the relay's backoff and a's wait for the ack
    await net.settle()
    net.clock.advance(MINUTE)
    await net.settle()
    assert rec.seen == [msg_id]  # delivered once, though a resent it after no ack came
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done"
    assert (await counts(net.hub))["relay"] == 0


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_hub_restarted_with_a_full_queue_loses_nothing(
    network: NetworkFactory, db: str
) -> None:
    net = await network(3, db=db)
    a, b, c = net.nodes
    rec = Recorder()
    b.on(TEST_TYPE, rec)
    await b.stop()
    sent = [await send(a, b.node_id) for _ in range(4)] + [
        await send(c, b.node_id) for _ in range(3)
    ]
    await net.settle()
    assert (await counts(net.hub))["relay"] == 7
    await net.hub.stop()
    await net.hub.start()
    assert (await counts(net.hub))["relay"] == 7
    await b.start()
    for _ in range(3):
        net.clock.advance(MINUTE)
        await net.settle()
    assert sorted(rec.seen) == sorted(sent)
    assert (await counts(net.hub))["relay"] == 0
    for n in (a, c):
        assert {r.state for r in await outbox_rows(n, TEST_TYPE.value)} == {"done"}


async def test_unacked_rows_replayed_at_startup(network: NetworkFactory) -> None:
    net = await network(2)
    a, b = net.nodes
    rec = Recorder()
    b.on(TEST_TYPE, rec)
    msg_id = await send(a, b.node_id)
    await a.stop()  # nothing sent yet
    await a.start()
    await net.settle()
    assert rec.seen == [msg_id]


async def test_handler_refusal_is_acked_as_refused_and_rolls_back(network: NetworkFactory) -> None:
    net = await network(2)
    a, b = net.nodes
    b.on(TEST_TYPE, Recorder(refuse_with=FederationError(Code.BAD_BODY, "not in this state")))
    await send(a, b.node_id)
    await net.settle()
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "failed" and row.failed_code == "bad_body"


async def test_no_handler_is_unknown_type_and_nothing_stored(network: NetworkFactory) -> None:
    net = await network(2)
    a, b = net.nodes
    status = {
        "activation_id": "01J00000000000000000000000",
        "requester": a.node_id,
        "responder": b.node_id,
        "state": "requested",
        "counts": {"affected": 1, "peers_needed": 1, "peers_offered": 0},
        "incident_type": "other",
        "ts": net.clock.now_ms(),
    }
    assert MessageType.ACTIVATION_STATUS not in b.fed.handlers  # meant for the hub
    async with a.db.write() as conn:
        await a.fed.send(conn, b.node_id, MessageType.ACTIVATION_STATUS, status)
    before = await counts(b)
    await net.settle()
    assert await counts(b) == before
    [row] = await outbox_rows(a)
    assert row.state == "pending"  # unknown_type may pass after an upgrade: retried
    assert row.last_error == "transient refusal"


async def test_send_refuses_unknown_destination_and_bad_body_writing_nothing(
    network: NetworkFactory,
) -> None:
    net = await network(1)
    (a,) = net.nodes
    with pytest.raises(FederationError) as e:
        await send(a, "nobody-here")
    assert e.value.code == "unknown_node"
    with pytest.raises(FederationError) as e:
        await send(a, net.hub.node_id, {"reason": "made-up"})
    assert e.value.code == "bad_body"
    assert (await counts(a))["outbox"] == 0


async def test_the_federation_client_keeps_no_cookie_from_a_peer(
    network: Callable[..., Awaitable[Network]],
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list[str | None] = []

    async def peer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        resp = web.Response(text="ok")
        resp.set_cookie("track", "peer-set-this")
        return resp

    app = web.Application()
    app.router.add_get("/", peer)
    net = await network(1)
    http = net.nodes[0].fed.http
    assert http is not None
    async with TestServer(app) as server:
        for _ in range(2):
            # by name: a jar keeps no cookie from a bare IP address anyway
            async with http.get(f"http://localhost:{server.port}/") as r:
                assert r.status == 200 and "track" in r.cookies  # the peer did set it
    assert seen == [None, None]  # and it was never sent back


async def test_a_message_to_the_hub_goes_as_soon_as_the_hub_is_back(
    network: NetworkFactory,
) -> None:
    """A message addressed to the hub itself has no other route: the hub being down once
    must not park it for `DIRECT_RETRY_MS` the way a peer's direct route is parked (its
    messages then go through the hub). Found by the kill -9 chaos test: audit anchors for
    the hub stayed pending a minute after the hub was back."""
    net = await network(2)
    a, _ = net.nodes
    rec = Recorder()
    await net.hub.stop()
    msg_id = await send(a, net.hub.node_id)
    await net.settle()
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "pending" and row.attempts >= 1
    await net.hub.start()
    net.hub.fed.register_handler(TEST_TYPE, rec, replace=True)
    for _ in range(3):  # past the retry backoff, well before DIRECT_RETRY_MS (60 s)
        net.clock.advance(5_000)
        await net.settle()
    assert rec.seen == [msg_id]
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done"
