"""Shares through real servers (SQLite and PostgreSQL): a forged share (signed with a key
the roster does not list), a replayed one (the same envelope again), and a mismatched one (a
different share for a stored node-month, a share from a network that is not shared, bounds
not the policy's) are refused with a stable code and nothing stored changes; after a lost
ack the node resends its shares as the same bytes and nothing is stored twice; a share to
the helper travels through the hub's relay when the helper is not directly reachable."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bench.reliability_report import record
from federation.keystore import NodeKeys
from federation.outbox import AWAIT_ACK_MS
from federation.store import inbox, outbox
from helper.store import HelperShare
from hub.stats.rounds import HubShare
from protocol import shares
from protocol.messages import MessageType
from protocol.workload import SCHEMA, WORKLOAD_KEYS
from tests.federation.helpers import envelope, put_batch
from tests.shared_agg.conftest import SharedFactory
from tests.shared_agg.network import HELPER_ID
from tests.shared_agg.rounds_support import MONTH, count, monthly, seed

K = len(WORKLOAD_KEYS)


def body(values: list[int], **kw: Any) -> dict[str, Any]:
    return {"month": MONTH, "schema": SCHEMA, "share": shares.encode(values),
            "bounds": {"per_person_month": 4, "per_cell": 1}, "measure": "zcdp", **kw}


async def hub_rows(net: Any) -> list[tuple[Any, ...]]:
    async with net.hub.db.read() as conn:
        return [tuple(r) for r in await conn.execute(
            select(HubShare.node_id, HubShare.month, HubShare.share, HubShare.body_sha256))]


async def put(net: Any, node: Any, env: bytes) -> tuple[str, str | None]:
    status, doc = await put_batch(node, net.hub.url, net.hub.node_id, [env])
    assert status == 200
    [r] = doc["results"]
    return r["status"], r["code"]


async def test_forged_replayed_and_mismatched_shares(shared_net: SharedFactory) -> None:
    net = await shared_net(2)
    a = net.nodes[0]
    good = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_SHARE,
                    body=body([5] * K))
    assert await put(net, a, good) == ("accepted", None)
    stored = await hub_rows(net)
    assert len(stored) == 1
    # replayed: the same envelope again is a duplicate; nothing new
    assert await put(net, a, good) == ("duplicate", None)
    # the same body under a new msg id (a node's resend): accepted, the stored row unchanged
    same = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_SHARE, body=body([5] * K))
    assert await put(net, a, same) == ("accepted", None)
    # forged: signed with a key the roster does not list for agency-1
    forged = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_SHARE,
                      body=body([9] * K), keys=NodeKeys.generate())
    status, code = await put(net, a, forged)
    assert status == "refused" and code in ("bad_signature", "unknown_key")
    # mismatched: another share for the stored node-month; bounds not the policy's
    other = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_SHARE, body=body([6] * K))
    assert await put(net, a, other) == ("refused", "conflicting_share")
    b = net.nodes[1]
    wrong = envelope(net, b, net.hub, msg_type=MessageType.AGGREGATE_SHARE,
                     body=body([6] * K, measure="pure_dp"))
    assert await put(net, b, wrong) == ("refused", "share_mismatch")
    assert await hub_rows(net) == stored
    record("security-shares-forged-replayed-mismatched", area="security",
           case="forged, replayed and mismatched aggregate shares are refused and change "
                "nothing the hub stores",
           how="real hub, helper and nodes; a share signed with an unlisted key, the same "
               "envelope twice, a different share for a stored node-month, a share under "
               "another measure, PUT to the hub",
           result=f"forged {status}/{code}; replay duplicate; conflicting_share; "
                  "share_mismatch; the stored share unchanged")


async def test_shares_resent_as_the_same_bytes(shared_net: SharedFactory) -> None:
    net = await shared_net(2)
    a = net.nodes[0]
    await seed(a, 10)
    assert len(await monthly(net, a)) == 1
    await a.fed.run_once()  # both shares delivered, the acks not yet back ...
    first = await _share_envelopes(a)
    assert len(first) == 2 and all(e is not None for e in first.values())
    await a.stop()  # ... and the node goes down before they arrive
    await net.settle()
    await a.start()
    assert await monthly(net, a) == []  # no second split
    net.clock.advance(AWAIT_ACK_MS + 60_000)
    assert await a.fed.run_once() >= 1  # resent
    net.clock.advance(20 * 60_000)
    await net.settle()
    assert await _share_envelopes(a) == first  # byte for byte
    async with a.db.read() as conn:
        rows = (await conn.execute(select(outbox.c.state, outbox.c.attempts).where(
            outbox.c.msg_type == "aggregate_share"))).all()
    assert [r.state for r in rows] == ["done", "done"] and max(r.attempts for r in rows) >= 2
    assert await count(net.hub, HubShare) == 1
    assert await count(net.helper, HelperShare) == 1
    async with net.hub.db.read() as conn:
        seen = (await conn.execute(select(inbox.c.status).where(
            inbox.c.msg_type == "aggregate_share"))).all()
    assert [r.status for r in seen] == ["accepted"]


async def test_the_helper_share_is_relayed_by_the_hub(shared_net: SharedFactory) -> None:
    """Agencies never reach the helper directly: its share goes through the hub's relay."""
    net = await shared_net(1)
    a = net.nodes[0]
    await seed(a, 5)
    await monthly(net, a)
    await net.hub.relay.stop()  # hold what the hub relays, to see where the share went
    await a.fed.run_once()  # the node's pass only
    assert await count(net.hub, HubShare) == 1
    assert await net.hub.relay.queue_counts() == {HELPER_ID: 1}  # sealed to the helper
    assert await count(net.helper, HelperShare) == 0
    await net.helper.stop()  # and while the helper is down the relay keeps it
    await net.hub.relay.start()
    await net.settle()
    assert await net.hub.relay.queue_counts() == {HELPER_ID: 1}
    await net.helper.start()
    net.clock.advance(20 * 60_000)
    await net.settle()
    assert await count(net.helper, HelperShare) == 1


async def _share_envelopes(node: Any) -> dict[str, bytes | None]:
    async with node.db.read() as conn:
        return {r.destination: r.envelope for r in await conn.execute(
            select(outbox.c.destination, outbox.c.envelope).where(
                outbox.c.msg_type == "aggregate_share"))}


async def test_a_month_released_locally_is_never_also_shared(shared_net: SharedFactory) -> None:
    """The hub refuses a share for a node-month it holds a local release of."""
    from node.privacy.release import build_release
    from node.privacy.schema import ReleasePolicy
    from tests.privacy.synthetic import synthetic_columns

    net = await shared_net(1)
    a = net.nodes[0]
    policy = ReleasePolicy.from_roster_policy(a.fed.state.policy)
    local = build_release(synthetic_columns(20, 5, seed=3), node_id=a.node_id, month=MONTH,
                          policy=policy, signing_key=a.keys.signing_key,
                          key_version=a.keys.key_version, now_ms=net.clock.now_ms())
    rel = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RELEASE, body=local.body)
    assert (await put(net, a, rel))[0] == "accepted"
    share = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_SHARE, body=body([1] * K))
    assert await put(net, a, share) == ("refused", "share_mismatch")
    assert await hub_rows(net) == []


async def test_results_only_from_the_helper_for_an_open_round(shared_net: SharedFactory) -> None:
    from tests.vectors.aggregate_vectors import bodies

    net = await shared_net(1)
    a = net.nodes[0]
    result = bodies()[MessageType.AGGREGATE_RESULT]
    from_agency = envelope(net, a, net.hub, msg_type=MessageType.AGGREGATE_RESULT, body=result)
    assert await put(net, a, from_agency) == ("refused", "unknown_sender")
    from_helper = envelope(net, net.helper, net.hub, msg_type=MessageType.AGGREGATE_RESULT,
                           body=result)
    status, doc = await put_batch(net.helper, net.hub.url, net.hub.node_id, [from_helper])
    assert status == 200
    assert (doc["results"][0]["status"], doc["results"][0]["code"]) == (
        "refused", "round_conflict")  # no such round
    from sqlalchemy import func

    from hub.stats.rounds import SharedFigure

    async with net.hub.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(SharedFigure))
                ).scalar_one() == 0
