"""Interstate relay through real servers (two boards, two hubs, nodes on both sides) on
SQLite and PostgreSQL: a message from tx/agency-a to hi/agency-b, its reply and the acks
across the line; a hub that is down delays, never loses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.reliability_report import record
from protocol.envelope import Opened
from protocol.messages import MessageType
from tests.federation.helpers import TEST_BODY, TEST_TYPE, counts, outbox_rows
from tests.interstate.relay_networks import Pair, make_pair

MINUTE = 60_000


@pytest.fixture(params=["sqlite", "postgres"])
async def pair(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    p = await make_pair(tmp_path, db=request.param, pg_admin_url=pg)
    try:
        yield p
    finally:
        await p.close()


class Seen:
    """A handler recording (qualified sender, msg id, thread) of what it applied; with
    `reply`, it answers the sender across the line in the same transaction."""

    def __init__(self, node: Any = None, reply: bool = False) -> None:
        self.got: list[tuple[str, str, str | None]] = []
        self.node = node
        self.reply = reply

    async def __call__(self, conn: AsyncConnection, opened: Opened) -> None:
        self.got.append((opened.outer.from_, opened.inner.msg_id, opened.inner.in_reply_to))
        if self.reply:
            await self.node.fed.send(conn, opened.outer.from_, MessageType.ACTIVATION_UPDATE,
                                     {"stage": "mobilized"}, in_reply_to=opened.inner.msg_id)


async def send(node: Any, to: str) -> str:
    async with node.db.write() as conn:
        msg_id: str = await node.fed.send(conn, to, TEST_TYPE, TEST_BODY)
    return msg_id


async def test_message_across_the_line_reply_and_acks(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    at_b = Seen(b, reply=True)
    b.on(TEST_TYPE, at_b)
    at_a = Seen()
    a.on(MessageType.ACTIVATION_UPDATE, at_a)
    msg_id = await send(a, "hi/agency-b")
    [row] = await outbox_rows(a)
    assert row.destination == "hi/agency-b" and row.envelope.endswith(b',"v":2}')
    await pair.settle()
    assert at_b.got == [("tx/agency-a", msg_id, None)]  # the qualified sender
    [reply] = at_a.got
    assert reply[0] == "hi/agency-b" and reply[2] == msg_id
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done" and row.acked_ts is not None  # acked across the line
    [row] = await outbox_rows(b, MessageType.ACTIVATION_UPDATE.value)
    assert row.state == "done"
    for nid in ("tx", "hi"):
        assert (await counts(pair.hub(nid)))["relay"] == 0
    # intra-network traffic keeps v: 1 beside it
    c = pair.node("tx", "agency-c")
    seen_c = Seen()
    c.on(TEST_TYPE, seen_c)
    local = await send(a, "agency-c")
    await pair.settle()
    assert seen_c.got == [("agency-a", local, None)]
    # a qualified name of the own network is the bare id: v: 1, today's bytes
    local2 = await send(a, "tx/agency-c")
    await pair.settle()
    assert seen_c.got[-1] == ("agency-a", local2, None)
    rows = [r for r in await outbox_rows(a, TEST_TYPE.value) if r.destination == "agency-c"]
    assert len(rows) == 2
    assert all(r.envelope.endswith(b',"v":1}') and r.state == "done" for r in rows)


async def test_other_hub_down_delays_never_loses(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    at_b = Seen()
    b.on(TEST_TYPE, at_b)
    hub_hi = pair.hub("hi")
    await hub_hi.stop()
    msg_id = await send(a, "hi/agency-b")
    await pair.settle()
    assert at_b.got == []
    assert (await counts(pair.hub("tx")))["relay"] == 1  # held by tx's hub
    await hub_hi.start()
    for _ in range(4):
        pair.clock.advance(MINUTE)  # past the relay's backoff and a's wait for the ack
        await pair.settle()
    assert at_b.got == [("tx/agency-a", msg_id, None)]  # delivered once
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done"
    assert (await counts(pair.hub("tx")))["relay"] == 0
    assert (await counts(pair.hub("hi")))["relay"] == 0
    record("fault-interstate-hub-down", area="fault",
           case="the other network's hub is down while a message crosses the line",
           how="two boards, two hubs, nodes on both sides (real servers, SQLite and "
               "PostgreSQL); hi's hub stopped, tx/agency-a sends to hi/agency-b, hi's hub "
               "restarted",
           result="held in tx's relay queue, delivered once after the restart, acked "
                  "across the line; both relay queues empty")


async def test_newer_roster_of_the_sender_network_travels_by_itself(pair: Pair) -> None:
    """tx publishes roster v2; a message under it is refused for now by hi's hub and node
    (`roster_mismatch`), each of which fetches the newer roster in the background (hub-hi
    from hub-tx, agency-b from hub-hi) and verifies it against the compact: delivered once."""
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    at_b = Seen()
    b.on(TEST_TYPE, at_b)
    net = pair.nets["tx"]
    assert net.roster is not None
    v2 = net.board.sign(net.board.next(net.roster, now=pair.clock.now_ms()))
    net.roster = v2
    for s in (net.hub, *net.nodes):
        await s.fed.roster.accept([v2])
    msg_id = await send(a, "hi/agency-b")
    for _ in range(6):
        await pair.settle()
        pair.clock.advance(MINUTE)
    assert at_b.got == [("tx/agency-a", msg_id, None)]
    assert pair.hub("hi").fed.foreign.version("tx") == 2  # type: ignore[union-attr]
    assert b.fed.foreign.version("tx") == 2  # type: ignore[union-attr]
    [row] = await outbox_rows(a, TEST_TYPE.value)
    assert row.state == "done"


async def test_a_hub_itself_sends_across_the_line_and_gets_the_ack(pair: Pair) -> None:
    """A hub is a node of its network too: its own message to hi/agency-b goes straight to
    hi's hub (the compact names it), and b's ack comes back into hub-tx's inbox."""
    hub_tx, b = pair.hub("tx"), pair.node("hi", "agency-b")
    at_b = Seen()
    b.on(TEST_TYPE, at_b)
    async with hub_tx.db.write() as conn:
        msg_id = await hub_tx.fed.send(conn, "hi/agency-b", TEST_TYPE, TEST_BODY)
    await pair.settle()
    assert at_b.got == [("tx/hub-tx", msg_id, None)]
    [row] = await outbox_rows(hub_tx, TEST_TYPE.value)
    assert row.state == "done" and row.destination == "hi/agency-b"
