"""The hub: relay checks, activation log (addressed to the hub), operator API, migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from federation.database import make_engine, migrate
from federation.outbox import claim_due, enqueue
from protocol.canonical import canonical_bytes, parse_json
from protocol.messages import MessageType
from tests.federation.helpers import (
    TEST_TYPE,
    Recorder,
    counts,
    envelope,
    outbox_rows,
    put_batch,
)
from tests.federation.network import OPERATOR_TOKEN, Network, network_factory

NetworkFactory = Callable[..., Awaitable[Network]]


@pytest.fixture
async def hubnet(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[NetworkFactory]:
    """The federation tests' `network` fixture factory."""
    async for factory in network_factory(tmp_path, request):
        yield factory


AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _status_body(
    requester: str, responder: str | None, now: int, activation_id: str
) -> dict[str, object]:
    return {
        "activation_id": activation_id,
        "requester": requester,
        "responder": responder,
        "state": "requested",
        "counts": {"affected": 12, "peers_needed": 4, "peers_offered": 0},
        "incident_type": "line_of_duty_death",
        "ts": now,
    }


async def test_relay_refuses_unroutable_and_unsigned_without_queueing(
    hubnet: NetworkFactory,
) -> None:
    net = await hubnet(2)
    a, b = net.nodes
    hub = net.hub
    before = await counts(hub)
    unknown = envelope(net, a, b, to="nobody-here")
    to_self = envelope(net, a, a)
    obj = parse_json(envelope(net, a, b))
    obj["sig"]["value"] = obj["sig"]["value"][:-2] + (
        "AA" if obj["sig"]["value"][-2:] != "AA" else "BA"
    )
    status, body = await put_batch(
        a, hub.url, hub.node_id, [unknown, to_self, canonical_bytes(obj)]
    )
    assert [r["code"] for r in body["results"]] == [
        "wrong_recipient",
        "wrong_recipient",
        "bad_signature",
    ]
    assert await counts(hub) == before


async def test_relay_dedupes_queued_messages(hubnet: NetworkFactory) -> None:
    net = await hubnet(2)
    a, b = net.nodes
    await b.stop()
    env = envelope(net, a, b)
    r1 = await put_batch(a, net.hub.url, net.hub.node_id, [env])
    r2 = await put_batch(a, net.hub.url, net.hub.node_id, [env])
    assert [r1[1]["results"][0]["status"], r2[1]["results"][0]["status"]] == [
        "accepted",
        "duplicate",
    ]
    assert (await counts(net.hub))["relay"] == 1
    async with aiohttp.ClientSession() as http:
        async with http.get(net.hub.url + "/api/v1/relay/queue", headers=AUTH) as resp:
            assert (await resp.json())["queued"] == {b.node_id: 1}


async def test_activation_status_reaches_the_log_and_api(hubnet: NetworkFactory) -> None:
    net = await hubnet(2)
    a, b = net.nodes
    now = net.clock.now_ms()
    act = "01J00000000000000000000000"
    async with a.db.write() as conn:
        await a.fed.send(
            conn,
            net.hub.node_id,
            MessageType.ACTIVATION_STATUS,
            _status_body(a.node_id, b.node_id, now, act),
        )
        # A node may not report an activation it is not party to.
        await a.fed.send(
            conn,
            net.hub.node_id,
            MessageType.ACTIVATION_STATUS,
            _status_body(b.node_id, None, now, act),
        )
    await net.settle()
    async with aiohttp.ClientSession() as http:
        async with http.get(net.hub.url + "/api/v1/activation-log", headers=AUTH) as resp:
            entries = (await resp.json())["entries"]
        async with http.get(net.hub.url + "/api/v1/activation-log") as resp:
            assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthenticated"
        async with http.get(net.hub.url + "/api/v1/activation-log?limit=x", headers=AUTH) as resp:
            assert resp.status == 400
        async with http.get(net.hub.url + "/api/v1/directory?discipline=law_enforcement") as resp:
            assert [n["node_id"] for n in (await resp.json())["nodes"]] == [b.node_id]
        async with http.get(net.hub.url + "/api/v1/federation/alarms", headers=AUTH) as resp:
            assert (await resp.json())["alarms"] == []
    assert len(entries) == 1
    e = entries[0]
    assert (e["requester"], e["responder"], e["reported_by"], e["counts"]["affected"]) == (
        a.node_id,
        b.node_id,
        a.node_id,
        12,
    )
    # Both acked end to end by the hub: one accepted, one refused.
    states = sorted((r.state, r.failed_code) for r in await _outbox(a))
    assert states == [("done", None), ("failed", "bad_body")]


async def _outbox(node: object) -> list[object]:
    from tests.federation.helpers import outbox_rows

    return await outbox_rows(node, "activation_status")  # type: ignore[arg-type]


async def test_hub_ack_reaches_node_and_relay_works_both_ways(hubnet: NetworkFactory) -> None:
    net = await hubnet(3)
    a, b, c = net.nodes
    rec = Recorder()
    c.on(TEST_TYPE, rec)
    await c.stop()
    async with a.db.write() as conn:
        await a.fed.send(conn, c.node_id, TEST_TYPE, {"reason": "policy"})
    await net.settle()
    await c.start()
    net.clock.advance(120_000)
    await net.settle()
    assert len(rec.seen) == 1


async def test_hub_migrations_on_both_databases(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations")
        await migrate(engine, "hub:migrations")  # idempotent
    finally:
        await engine.dispose()


async def test_outbox_skip_locked_claims_are_disjoint(db_url: str) -> None:
    """Two workers claiming at once never get the same row (FOR UPDATE SKIP LOCKED on
    PostgreSQL; SQLite has one writer)."""
    import asyncio

    from hub.db import Database

    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations")
        db = Database(engine)
        async with db.write() as conn:
            for i in range(40):
                await enqueue(
                    conn,
                    destination=f"dest-{i % 3}",
                    msg_id=f"01J{i:023d}",
                    msg_type="ack",
                    created_ts=1000,
                    expires_ts=10**9,
                    envelope=b"{}",
                )

        async def claim() -> list[int]:
            async with db.write() as conn:
                return [r.id for r in await claim_due(conn, now=2000, limit=25)]

        first, second = await asyncio.gather(claim(), claim())
        assert set(first).isdisjoint(second)
        assert len(first) + len(second) == 40
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_reports_linger_then_travel_as_one_batch_and_each_is_logged(
    hubnet: NetworkFactory, db: str
) -> None:
    net = await hubnet(3, db=db)
    a, b, c = net.nodes
    a.fed.batch_linger_ms = 200
    now = net.clock.now_ms()
    act = "01J00000000000000000000000"
    async with a.db.write() as conn:
        for responder in (b.node_id, c.node_id):
            await a.fed.send(conn, net.hub.node_id, MessageType.ACTIVATION_STATUS,
                             {**_status_body(a.node_id, responder, now, act), "state": "offered"})
        # Not party to it: travels alone, so its refusal takes no other report with it.
        await a.fed.send(conn, net.hub.node_id, MessageType.ACTIVATION_STATUS,
                         _status_body(b.node_id, c.node_id, now, act))
    assert await net.settle() == 0  # lingering: nothing is due yet
    net.clock.advance(200)
    await net.settle()
    async with aiohttp.ClientSession() as http:
        async with http.get(net.hub.url + "/api/v1/activation-log", headers=AUTH) as resp:
            entries = (await resp.json())["entries"]
    assert sorted(e["responder"] for e in entries) == [b.node_id, c.node_id]
    assert {e["state"] for e in entries} == {"offered"}
    assert len({e["msg_id"] for e in entries}) == 1  # one message carried both
    rows = await outbox_rows(a)
    by_type = {r.msg_type: r for r in rows}
    carrier = by_type["activation_statuses"]
    assert carrier.msg_id == entries[0]["msg_id"] and carrier.state == "done"
    assert carrier.acked_ts is not None  # done on the hub's signed ack
    alone = [r for r in rows if r.msg_type == "activation_status"]
    # The merged report is done on the carrier's ack, not before; it was never sent alone.
    assert sorted((r.state, r.failed_code, r.carrier, r.envelope is None) for r in alone) == [
        ("done", None, carrier.msg_id, True),
        ("failed", "bad_body", None, False),
    ]
    assert [r.acked_ts for r in alone if r.carrier] == [carrier.acked_ts]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_merged_reports_wait_for_their_carrier_and_share_its_failure(
    hubnet: NetworkFactory, db: str
) -> None:
    net = await hubnet(3, db=db)
    a, b, c = net.nodes
    now = net.clock.now_ms()
    act = "01J00000000000000000000000"
    await net.hub.stop()  # the hub is down: the batch is built, then cannot be delivered
    async with a.db.write() as conn:
        for responder in (b.node_id, c.node_id):
            await a.fed.send(conn, net.hub.node_id, MessageType.ACTIVATION_STATUS,
                             {**_status_body(a.node_id, responder, now, act), "state": "offered"},
                             ttl_ms=60_000)
    await a.fed.run_once()
    rows = await outbox_rows(a)
    carrier = next(r for r in rows if r.msg_type == "activation_statuses")
    merged = [r for r in rows if r.msg_type == "activation_status"]
    assert carrier.state == "pending" and carrier.attempts == 1
    assert [(r.state, r.carrier, r.acked_ts) for r in merged] == [
        ("merged", carrier.msg_id, None)]
    # Neither done nor lost while the carrier waits: `outbox_counts` shows it unfinished.
    assert (await a.fed.outbox_counts()).get("merged") == 1

    net.clock.advance(60_000 + 300_000 + 1)  # past the carrier's expiry and the skew window
    await a.fed.run_once()
    rows = await outbox_rows(a)
    assert sorted((r.msg_type, r.state, r.failed_code) for r in rows) == [
        ("activation_status", "failed", "expired"),
        ("activation_statuses", "failed", "expired"),
    ]


async def test_a_batch_with_a_report_the_sender_is_not_party_to_is_refused_whole(
    hubnet: NetworkFactory,
) -> None:
    net = await hubnet(3)
    a, b, c = net.nodes
    now = net.clock.now_ms()
    act = "01J00000000000000000000000"
    batch = {"statuses": [_status_body(a.node_id, b.node_id, now, act),
                          _status_body(b.node_id, c.node_id, now, act)]}
    async with a.db.write() as conn:
        await a.fed.send(conn, net.hub.node_id, MessageType.ACTIVATION_STATUSES, batch)
    await net.settle()
    async with aiohttp.ClientSession() as http:
        async with http.get(net.hub.url + "/api/v1/activation-log", headers=AUTH) as resp:
            assert (await resp.json())["entries"] == []
    (row,) = await outbox_rows(a, "activation_statuses")
    assert (row.state, row.failed_code) == ("failed", "bad_body")


async def test_a_bad_report_is_refused_before_anything_is_queued(hubnet: NetworkFactory) -> None:
    from federation.errors import FederationError

    net = await hubnet(2)
    a, b = net.nodes
    now = net.clock.now_ms()
    good = _status_body(a.node_id, b.node_id, now, "01J00000000000000000000000")
    for to, body, code in (
        (net.hub.node_id, {**good, "state": "lost"}, "bad_body"),
        ("nobody-here", good, "unknown_node"),
    ):
        with pytest.raises(FederationError) as info:
            async with a.db.write() as conn:
                await a.fed.send(conn, net.hub.node_id, MessageType.ACTIVATION_STATUS, good)
                await a.fed.send(conn, to, MessageType.ACTIVATION_STATUS, body)
        assert info.value.code == code
    assert await outbox_rows(a) == []  # the good one went with its transaction
