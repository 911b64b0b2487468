"""Every fault is refused with its stable code and changes nothing stored (row counts of the
inbox, outbox, alarms and relay queue are compared before and after)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable

import pytest

from federation.keystore import NodeKeys
from federation.roster import Revocation
from protocol.canonical import canonical_bytes, parse_json
from protocol.encoding import b64u, sha256_b64u, unb64u
from protocol.envelope import Sender, build_inner, seal_outer
from protocol.ids import new_ulid
from tests.federation.helpers import TEST_TYPE, Recorder, counts, envelope, put_batch
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]
DAY = 86_400_000


async def _net(network: NetworkFactory, n: int = 3) -> tuple[Network, Recorder]:
    net = await network(n)
    rec = Recorder()
    for node in net.nodes:
        node.on(TEST_TYPE, rec)
    return net, rec


async def _refused(net: Network, origin: object, dst: object, envs: list[bytes], code: str) -> None:
    before = {s.node_id: await counts(s) for s in net.servers()}
    status, body = await put_batch(origin, dst.url, dst.node_id, envs)  # type: ignore[attr-defined]
    assert status == 200, body
    assert [r["status"] for r in body["results"]] == ["refused"] * len(envs)
    assert {r["code"] for r in body["results"]} == {code}
    after = {s.node_id: await counts(s) for s in net.servers()}
    assert after == before


def _mutate(env: bytes, fn: Callable[[dict[str, object]], None]) -> bytes:
    obj = parse_json(env)
    fn(obj)
    return canonical_bytes(obj)


async def test_same_envelope_twice_and_replay_after_expiry(network: NetworkFactory) -> None:
    net, rec = await _net(network, 2)
    a, b = net.nodes
    env = envelope(net, a, b, ttl_ms=60_000)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert body["results"][0]["status"] == "accepted"
    before = await counts(b)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert body["results"][0]["status"] == "duplicate" and body["results"][0]["code"] is None
    after = await counts(b)
    assert after["inbox"] == before["inbox"]
    assert len(rec.seen) == 1
    # The stored inbox row is swept after expiry + skew; a replay then is refused as expired.
    net.clock.advance(60_000 + 5 * 60_000 + 1)
    assert await b.fed.inbox.sweep() == 1
    await _refused(net, a, b, [env], "expired")
    assert len(rec.seen) == 1


async def test_forged_outer_signature(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, c = net.nodes
    forged = envelope(net, a, b, keys=NodeKeys.generate())  # signed by a key a does not hold
    await _refused(net, a, b, [forged], "bad_signature")
    # An envelope claiming to come from a, built by c (through c's hop).
    await _refused(net, c, b, [forged], "bad_signature")
    assert rec.seen == []


async def test_tampered_ciphertext_and_fields(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    env = envelope(net, a, b)

    def flip_ct(o: dict[str, object]) -> None:
        ct = bytearray(unb64u(str(o["ct"])))
        ct[40] ^= 1
        o["ct"] = b64u(bytes(ct))

    await _refused(net, a, b, [_mutate(env, flip_ct)], "bad_signature")

    def rehash(o: dict[str, object]) -> None:
        flip_ct(o)
        o["ct_sha256"] = sha256_b64u(unb64u(str(o["ct"])))

    await _refused(net, a, b, [_mutate(env, rehash)], "bad_signature")
    await _refused(net, a, b, [_mutate(env, lambda o: o.update(extra=1))], "malformed")
    assert rec.seen == []


async def test_forged_inner_signature_and_undecryptable(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    now = net.clock.now_ms()
    sender = Sender(a.node_id, a.keys.key_version, a.keys.signing_key)
    msg_id = new_ulid(now, os.urandom(10))
    kw = {"msg_id": msg_id, "created_ts": now, "expires_ts": now + DAY}
    inner, _sig = build_inner(
        sender=sender,
        to=b.node_id,
        msg_type=TEST_TYPE,
        body={"reason": "policy"},
        roster_version=1,
        **kw,
    )
    bad_inner = seal_outer(
        sender=sender,
        to=b.node_id,
        recipient_enc_key=b.keys.enc_public_bytes,
        sealed_plaintext=bytes(64) + inner,
        roster=a.fed.state.ref(),
        **kw,
    )
    await _refused(net, a, b, [bad_inner], "bad_inner_signature")
    wrong_key = envelope(net, a, b, enc_key=NodeKeys.generate().enc_public_bytes)
    await _refused(net, a, b, [wrong_key], "undecryptable")
    assert rec.seen == []


async def test_inner_message_readdressed_by_its_recipient(network: NetworkFactory) -> None:
    """b receives a's message and tries to pass it to c as if a had sent it to c."""
    net, rec = await _net(network)
    a, b, c = net.nodes
    now = net.clock.now_ms()
    a_sender = Sender(a.node_id, a.keys.key_version, a.keys.signing_key)
    b_sender = Sender(b.node_id, b.keys.key_version, b.keys.signing_key)
    msg_id = new_ulid(now, os.urandom(10))
    kw = {"msg_id": msg_id, "created_ts": now, "expires_ts": now + DAY}
    inner, sig = build_inner(
        sender=a_sender,
        to=b.node_id,
        msg_type=TEST_TYPE,
        body={"reason": "policy"},
        roster_version=1,
        **kw,
    )
    ref = b.fed.state.ref()
    # Under b's own outer signature: the inner signature is not b's.
    as_b = seal_outer(
        sender=b_sender,
        to=c.node_id,
        recipient_enc_key=c.keys.enc_public_bytes,
        sealed_plaintext=sig + inner,
        roster=ref,
        **kw,
    )
    await _refused(net, b, c, [as_b], "bad_inner_signature")
    # Claiming a's outer: b cannot sign as a.
    as_a = _mutate(as_b, lambda o: o.update({"from": a.node_id}))
    await _refused(net, b, c, [as_a], "bad_signature")
    # a itself sealing an inner addressed to b into an envelope to c.
    misaddressed = seal_outer(
        sender=a_sender,
        to=c.node_id,
        recipient_enc_key=c.keys.enc_public_bytes,
        sealed_plaintext=sig + inner,
        roster=ref,
        **kw,
    )
    await _refused(net, a, c, [misaddressed], "recipient_mismatch")
    assert rec.seen == []


async def test_revoked_key_refused(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, c = net.nodes
    env = envelope(net, a, b)  # signed before the revocation
    rev = Revocation(
        key=b64u(a.keys.verify_key_bytes), revoked_ts=net.clock.now_ms(), reason="stolen laptop"
    )
    v2 = net.board.sign(
        net.board.next(net.roster, now=net.clock.now_ms(), revoked=[rev.model_dump()])
    )
    await net.publish(v2)
    # Relayed by c (a valid hop): the envelope itself is refused.
    await _refused(net, c, b, [env], "revoked_key")
    # a's own per-hop signature is refused for the whole request.
    before = await counts(b)
    status, body = await put_batch(a, b.url, b.node_id, [envelope(net, c, b)])
    assert status == 403 and body["error"]["code"] == "revoked_key"
    assert await counts(b) == before
    assert rec.seen == []


async def test_expired_roster_refused(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    env = envelope(net, a, b, ttl_ms=60 * DAY)
    net.clock.advance(31 * DAY)  # the roster (30 days) has expired; the envelope has not
    await _refused(net, a, b, [env], "roster_mismatch")
    assert rec.seen == []


async def test_split_view_in_an_envelope_is_alarmed(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    other = net.board.sign(
        net.board.roster(1, nodes=list(net.roster.roster.nodes), now=net.clock.now_ms() + 1)
    )
    now = net.clock.now_ms()
    sender = Sender(a.node_id, a.keys.key_version, a.keys.signing_key)
    from protocol.envelope import build_envelope
    from protocol.messages import RosterRef

    env = build_envelope(
        sender=sender,
        to=b.node_id,
        recipient_enc_key=b.keys.enc_public_bytes,
        msg_type=TEST_TYPE,
        body={"reason": "policy"},
        msg_id=new_ulid(now, os.urandom(10)),
        created_ts=now,
        expires_ts=now + DAY,
        roster=RosterRef(version=1, sha256=other.sha256),
    )
    before = await counts(b)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert body["results"][0]["code"] == "roster_mismatch"
    after = await counts(b)
    assert after["alarms"] == before["alarms"] + 1  # the alarm is the one thing stored
    assert {k: v for k, v in after.items() if k != "alarms"} == {
        k: v for k, v in before.items() if k != "alarms"
    }
    alarms = await b.fed.roster.list_alarms()
    assert alarms[0]["kind"] == "split_view" and alarms[0]["detail"]["seen_sha256"] == other.sha256
    assert rec.seen == []


async def test_request_level_refusals(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, c = net.nodes
    env = envelope(net, a, b)
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"destination": c.node_id}, 421, "wrong_recipient"),  # wrong destination header
        ({"ts": net.clock.now_ms() + 6 * 60_000}, 401, "from_future"),  # clock skew
        ({"ts": net.clock.now_ms() - 6 * 60_000}, 401, "expired"),
        ({"keys": NodeKeys.generate()}, 401, "bad_request_signature"),
        ({"body": b'{"envelopes": {}}'}, 400, "malformed"),
        ({"envs": [env] * 51}, 413, "batch_too_large"),  # oversize batch
    ]
    for kw, status_want, code in cases:
        before = await counts(b)
        dest = str(kw.pop("destination", b.node_id))
        envs = kw.pop("envs", [env])
        status, body = await put_batch(a, b.url, dest, envs, **kw)  # type: ignore[arg-type]
        assert (status, body["error"]["code"]) == (status_want, code), kw
        assert await counts(b) == before
    assert rec.seen == []


async def test_envelope_from_the_future_refused(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    env = envelope(net, a, b, created_ts=net.clock.now_ms() + 6 * 60_000)
    await _refused(net, a, b, [env], "from_future")
    assert rec.seen == []


async def test_batch_results_are_positional(network: NetworkFactory) -> None:
    net, rec = await _net(network)
    a, b, _ = net.nodes
    good1, good2 = envelope(net, a, b), envelope(net, a, b)
    bad = _mutate(envelope(net, a, b), lambda o: o.update(v=2))
    status, body = await put_batch(a, b.url, b.node_id, [good1, bad, good2, good1])
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "refused",
        "accepted",
        "duplicate",
    ]
    assert body["results"][1]["code"] == "malformed"
    assert [r["msg_id"] for r in body["results"]][::2] == [
        json.loads(good1)["msg_id"],
        json.loads(good2)["msg_id"],
    ]
    assert len(rec.seen) == 2


async def test_oversize_body_refused(network: NetworkFactory) -> None:
    net, _ = await _net(network, 2)
    a, b = net.nodes
    before = await counts(b)
    status, body = await put_batch(a, b.url, b.node_id, [], body=b" " * (51 * 65537 + 100))
    assert status == 413 and body["error"]["code"] == "too_large"
    assert await counts(b) == before


@pytest.mark.parametrize("field", ["to"])
async def test_hub_cannot_readdress(network: NetworkFactory, field: str) -> None:
    """A relay changing `to` breaks the sender's outer signature."""
    net, rec = await _net(network)
    a, b, c = net.nodes
    env = _mutate(envelope(net, a, b), lambda o: o.update({field: c.node_id}))
    await _refused(net, net.hub, c, [env], "bad_signature")
    assert rec.seen == []
