"""Interstate refusals through real servers (two boards, two hubs, nodes on both sides) on
SQLite and PostgreSQL, each with nothing stored: a network no compact lists
(`unknown_network`), a network removed from the compact (`network_not_in_compact`, from the
version that drops it on), another network's roster that no longer verifies against the
board the compact lists (`foreign_roster_invalid`), a hub serving its nodes a forged foreign
roster (the node verifies it itself), and compacts installed through the operator API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bench.reliability_report import record
from federation.errors import FederationError
from federation.interstate_tables import compacts, foreign_rosters
from protocol.envelope import Sender
from protocol.envelope_interstate import build_interstate_envelope
from protocol.ids import new_ulid
from protocol.messages import MessageType, RosterRef
from tests.federation.boards import TestBoard, node_entry
from tests.federation.helpers import TEST_BODY, TEST_TYPE, counts, put_batch
from tests.federation.network import HubHandle, NodeHandle
from tests.interstate.relay_networks import OPERATOR_TOKEN, Pair, make_pair


@pytest.fixture(params=["sqlite", "postgres"])
async def pair(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    pg = request.getfixturevalue("pg_admin_url") if request.param == "postgres" else None
    p = await make_pair(tmp_path, db=request.param, pg_admin_url=pg)
    try:
        yield p
    finally:
        await p.close()


def v2(pair: Pair, src: NodeHandle, src_net: str, dst_net: str, dst: str,
       enc_key: bytes | None = None) -> bytes:
    """A `v: 2` envelope built by `src` itself (not through its service's checks)."""
    now = pair.clock.now_ms()
    roster = pair.nets[src_net].roster
    assert roster is not None
    target = next((n for n in pair.nets[dst_net].nodes if n.node_id == dst), None) \
        if dst_net in pair.nets else None
    key = enc_key or (target.keys.enc_public_bytes if target else os.urandom(32))
    return build_interstate_envelope(
        sender=Sender(node_id=src.node_id, key_version=src.keys.key_version,
                      signing_key=src.keys.signing_key),
        from_network=src_net, to_network=dst_net, to=dst, recipient_enc_key=key,
        msg_type=TEST_TYPE, body=TEST_BODY, msg_id=new_ulid(now, os.urandom(10)),
        created_ts=now, expires_ts=now + 3_600_000,
        roster=RosterRef(version=roster.version, sha256=roster.sha256))


async def refused(origin: Any, to: HubHandle | NodeHandle, env: bytes) -> str:
    status, body = await put_batch(origin, to.url, to.node_id, [env])
    assert status == 200, body
    [res] = body["results"]
    assert res["status"] == "refused"
    return str(res["code"])


async def send_code(node: NodeHandle, to: str) -> str:
    with pytest.raises(FederationError) as err:
        async with node.db.write() as conn:
            await node.fed.send(conn, to, TEST_TYPE, TEST_BODY)
    return err.value.code


async def table_count(server: Any, table: Any, **where: Any) -> int:
    q = select(func.count()).select_from(table)
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    async with server.fed.engine.connect() as conn:
        return int((await conn.execute(q)).scalar_one())


async def test_unknown_network_refused_nothing_stored(pair: Pair) -> None:
    a, hub_tx = pair.node("tx", "agency-a"), pair.hub("tx")
    assert await send_code(a, "ny/agency-x") == "unknown_network"
    assert (await counts(a))["outbox"] == 0
    assert await refused(a, hub_tx, v2(pair, a, "tx", "ny", "agency-x")) == "unknown_network"
    assert (await counts(hub_tx))["relay"] == 0
    async with aiohttp.ClientSession() as http:
        async with http.get(hub_tx.url + "/fed/v1/foreign-roster/ny") as resp:
            assert resp.status == 404


async def test_network_removed_from_compact_is_refused_from_next_version(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    hub_tx, hub_hi = pair.hub("tx"), pair.hub("hi")
    got: list[str] = []

    async def on_msg(_conn: Any, opened: Any) -> None:
        got.append(opened.outer.from_)

    a.on(TEST_TYPE, on_msg)
    async with b.db.write() as conn:  # under version 1: delivered
        await b.fed.send(conn, "tx/agency-a", TEST_TYPE, TEST_BODY)
    await pair.settle()
    assert got == ["hi/agency-b"]
    before_a = await counts(a)

    # version 2 drops hi, signed by tx alone; tx's hub and nodes take it
    await pair.install(pair.compact(["tx"]), ["tx"])
    assert a.fed.compact is not None and a.fed.compact.version == 2
    assert await send_code(a, "hi/agency-b") == "network_not_in_compact"
    assert (await counts(a))["outbox"] == before_a["outbox"]
    assert await refused(a, hub_tx, v2(pair, a, "tx", "hi", "agency-b")) == \
        "network_not_in_compact"
    # hi's hub is no member any more: its per-hop signature is refused, the whole request
    env = v2(pair, b, "hi", "tx", "agency-a", a.keys.enc_public_bytes)
    status, body = await put_batch(hub_hi, hub_tx.url, hub_tx.node_id, [env])
    assert status == 403 and body["error"]["code"] == "unknown_sender"
    # and a's own inbox refuses it even from its own hub
    assert await refused(hub_tx, a, env) == "network_not_in_compact"
    assert (await counts(hub_tx))["relay"] == 0
    after_a = await counts(a)
    assert after_a["inbox"] == before_a["inbox"] and got == ["hi/agency-b"]
    record("security-interstate-removed-network", area="security",
           case="a network removed from the compact is refused from the next version on",
           how="two boards, two hubs, nodes on both sides (real servers, SQLite and "
               "PostgreSQL); compact v2 drops hi; sends, relays and deliveries either way",
           result="network_not_in_compact at send, relay and inbox; hi's hub refused "
                  "unknown_sender; nothing stored")


async def test_foreign_roster_invalid_after_board_rotation(pair: Pair) -> None:
    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    hub_tx, hub_hi = pair.hub("tx"), pair.hub("hi")
    old = pair.nets["hi"].board
    pair.nets["hi"].board = TestBoard.make(3, 2)  # hi's board rotated in the compact
    signed = pair.compact(["tx", "hi"], extra={"hi": old.keys[: old.threshold]})
    await hub_tx.fed.interstate.store.accept([signed])  # type: ignore[union-attr]
    await a.fed.refresh_interstate()  # a learns v2 from its hub; hi's roster is the old one
    assert a.fed.compact is not None and a.fed.compact.version == 2
    before = await table_count(hub_tx, foreign_rosters, network_id="hi")
    assert await send_code(a, "hi/agency-b") == "foreign_roster_invalid"
    assert (await counts(a))["outbox"] == 0
    env = v2(pair, b, "hi", "tx", "agency-a", a.keys.enc_public_bytes)
    assert await refused(hub_hi, hub_tx, env) == "foreign_roster_invalid"
    assert await refused(hub_tx, a, env) == "foreign_roster_invalid"
    assert (await counts(hub_tx))["relay"] == 0 and (await counts(a))["inbox"] == 0
    # hi's hub still serves the roster signed by the old board: refused, nothing stored
    await hub_tx.fed.refresh_interstate("hi")
    assert await table_count(hub_tx, foreign_rosters, network_id="hi") == before
    record("security-interstate-foreign-roster", area="security",
           case="another network's roster is trusted only while it verifies against the "
                "board the current compact lists",
           how="real servers on SQLite and PostgreSQL; the compact rotates hi's board; "
               "sends to and envelopes from hi through tx's hub and into tx's node",
           result="foreign_roster_invalid at send, relay and inbox; nothing stored")


async def test_node_verifies_foreign_rosters_itself(pair: Pair) -> None:
    """A hub that serves its nodes a forged roster of another network (a rogue board's)
    gets it refused by each node; the node keeps what it held."""
    a, hub_tx = pair.node("tx", "agency-a"), pair.hub("tx")
    rogue = TestBoard.make(3, 2)
    b_keys = pair.node("hi", "agency-b").keys
    forged = rogue.sign(rogue.roster(
        2, nodes=[node_entry("agency-b", b_keys, "http://127.0.0.1:9")],
        now=pair.clock.now_ms(), prev=pair.nets["hi"].roster))
    async with hub_tx.db.write() as conn:  # a compromised hub's database
        await conn.execute(foreign_rosters.insert().values(
            network_id="hi", version=2, sha256=forged.sha256, document=forged.to_bytes(),
            compact_version=1, accepted_ts=pair.clock.now_ms()))
    await a.fed.refresh_interstate()
    assert await table_count(a, foreign_rosters, network_id="hi") == 1
    assert a.fed.foreign is not None and a.fed.foreign.version("hi") == 1


async def test_compact_install_api(pair: Pair) -> None:
    hub_tx = pair.hub("tx")
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    url = hub_tx.url + "/api/v1/compact"
    too_few = pair.compact(["tx", "hi"], signers=["tx"])  # hi's board did not sign
    pair.compacts.pop()
    good = pair.compact(["tx", "hi"])
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=too_few.to_bytes()) as resp:
            assert resp.status == 401
        async with http.post(url, data=too_few.to_bytes(), headers=auth) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["code"] == "compact_threshold"
        async with http.post(url, data=b"{}", headers=auth) as resp:
            assert (await resp.json())["error"]["code"] == "bad_compact"
        assert await table_count(hub_tx, compacts) == 1
        async with http.post(url, data=good.to_bytes(), headers=auth) as resp:
            assert resp.status == 200 and await resp.json() == {"accepted": [2], "version": 2}
        async with http.get(hub_tx.url + "/fed/v1/compact") as resp:
            assert await resp.read() == good.to_bytes()
        async with http.get(hub_tx.url + "/api/v1/interstate", headers=auth) as resp:
            doc = await resp.json()
    assert doc["network_id"] == "tx" and doc["compact_version"] == 2
    assert {m["network_id"]: m["roster_version"] for m in doc["members"]} == {"hi": 1, "tx": None}
    assert await table_count(hub_tx, compacts) == 2
    assert MessageType.ACK  # the acks across the line are covered by test_relay


async def test_member_hub_with_a_key_the_compact_does_not_list_is_refused(pair: Pair) -> None:
    from federation.keystore import NodeKeys

    a, b = pair.node("tx", "agency-a"), pair.node("hi", "agency-b")
    hub_tx, hub_hi = pair.hub("tx"), pair.hub("hi")
    env = v2(pair, b, "hi", "tx", "agency-a", a.keys.enc_public_bytes)
    status, body = await put_batch(hub_hi, hub_tx.url, hub_tx.node_id, [env],
                                   keys=NodeKeys.generate())  # not hub-hi's listed key
    assert status == 401 and body["error"]["code"] == "bad_request_signature"
    # a node of hi cannot hand its envelope to tx's hub itself: only hi's hub relays it
    status, body = await put_batch(b, hub_tx.url, hub_tx.node_id, [env])
    assert status == 403 and body["error"]["code"] == "unknown_sender"
    # tx's own agency relaying hi's envelope into tx: not the sender network's hub
    assert await refused(a, hub_tx, env) == "unknown_sender"
    assert (await counts(hub_tx))["relay"] == 0 and (await counts(a))["inbox"] == 0
    # the genuine relay is accepted (queued), and delivered once
    status, body = await put_batch(hub_hi, hub_tx.url, hub_tx.node_id, [env])
    assert status == 200 and body["results"][0]["status"] == "accepted"
    status, body = await put_batch(hub_hi, hub_tx.url, hub_tx.node_id, [env])
    assert body["results"][0]["status"] == "duplicate"


async def test_foreign_roster_route(pair: Pair) -> None:
    hub_tx = pair.hub("tx")
    hi_roster = pair.nets["hi"].roster
    assert hi_roster is not None
    url = hub_tx.url + "/fed/v1/foreign-roster/hi"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == hi_roster.to_bytes()
        async with http.get(url, params={"have_sha256": hi_roster.sha256}) as resp:
            assert resp.status == 304  # a node holding it gets no body
        async with http.get(url, params={"have_sha256": "x"}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_input"
        async with http.get(hub_tx.url + "/fed/v1/foreign-roster/N!") as resp:
            assert resp.status == 400
