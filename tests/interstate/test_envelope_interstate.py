"""Interstate (v 2) envelopes checked through a real compact and real foreign rosters on both
databases: a hub resolves a foreign node's keys through that network's roster verified
against the compact; every refusal has its stable code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.compact_store import CompactStore
from federation.database import make_engine, migrate
from federation.foreign_rosters import ForeignRosters
from federation.keystore import NodeKeys
from federation.roster import build_signed, roster_signature
from protocol.canonical import canonical_bytes, parse_json
from protocol.envelope import Sender, build_envelope
from protocol.envelope_interstate import build_interstate_envelope
from protocol.envelope_interstate_check import (
    check_interstate_outer,
    envelope_version,
    open_interstate_envelope,
)
from protocol.errors import Code, ProtocolError
from protocol.messages import MessageType, RosterRef
from tests.interstate.compacts import NOW, TestNetwork, compact_value, next_value, sign_compact
from tests.vectors.generate import sample_bodies, ulid


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    await migrate(eng, "hub:migrations")
    yield eng
    await eng.dispose()


def _sender(keys: NodeKeys, node_id: str) -> Sender:
    return Sender(node_id=node_id, key_version=keys.key_version, signing_key=keys.signing_key)


def _envelope(tx: TestNetwork, hi: TestNetwork, roster: RosterRef, n: int = 1,
              **over: str) -> bytes:
    a = tx.agencies["agency-a"]
    b = hi.agencies["agency-a"]
    return build_interstate_envelope(
        sender=_sender(a, "agency-a"), from_network=over.get("from_network", "tx"),
        to_network=over.get("to_network", "hi"), to="agency-a",
        recipient_enc_key=b.enc_public_bytes, msg_type=MessageType.ACTIVATION_REQUEST,
        body=sample_bodies()[MessageType.ACTIVATION_REQUEST], msg_id=ulid(n),
        created_ts=NOW, expires_ts=NOW + 3_600_000, roster=roster,
    )


async def test_a_hub_resolves_foreign_keys_through_the_compact(engine: AsyncEngine) -> None:
    tx, hi, ca = (TestNetwork.make(n) for n in ("tx", "hi", "ca"))
    clock = FakeClock(NOW)
    store = CompactStore(engine, clock, hi.pin())  # the hub of hi receives
    v1 = sign_compact(compact_value([tx, hi, ca]), [tx, hi, ca])
    await store.accept([v1])
    foreign = ForeignRosters(engine, clock, store.state)
    tx_roster = tx.roster()
    ref = RosterRef(version=1, sha256=tx_roster.sha256)
    raw = _envelope(tx, hi, ref)

    def code_of(data: bytes, *, open_it: bool = True) -> Code:
        with pytest.raises(ProtocolError) as err:
            if open_it:
                open_interstate_envelope(
                    data, me_network="hi", me="agency-a",
                    enc_key=hi.agencies["agency-a"].enc_key, resolver=foreign, now_ms=NOW)
            else:
                check_interstate_outer(data, resolver=foreign, now_ms=NOW)
        return err.value.code

    assert code_of(raw) is Code.FOREIGN_ROSTER_INVALID  # tx's roster not held yet
    await foreign.accept_document("tx", tx_roster.to_bytes())
    assert envelope_version(raw) == 2
    outer = check_interstate_outer(raw, resolver=foreign, now_ms=NOW)
    assert (outer.sender, outer.recipient) == ("tx/agency-a", "hi/agency-a")
    opened = open_interstate_envelope(
        raw, me_network="hi", me="agency-a", enc_key=hi.agencies["agency-a"].enc_key,
        resolver=foreign, now_ms=NOW)
    assert opened.msg_type is MessageType.ACTIVATION_REQUEST
    assert opened.inner["from_network"] == "tx" and opened.inner["to_network"] == "hi"

    # addressed to another node of ours, or to another network
    with pytest.raises(ProtocolError) as err:
        open_interstate_envelope(raw, me_network="hi", me="agency-b",
                                 enc_key=hi.agencies["agency-a"].enc_key, resolver=foreign,
                                 now_ms=NOW)
    assert err.value.code is Code.WRONG_RECIPIENT
    # an unknown network and a roster version tx never had
    assert code_of(_envelope(tx, hi, ref, to_network="ny"), open_it=False) is Code.UNKNOWN_NETWORK
    assert code_of(_envelope(tx, hi, RosterRef(version=2, sha256=ref.sha256))) is (
        Code.ROSTER_MISMATCH)
    # a relay re-addressing the envelope to ca breaks the outer signature
    obj = parse_json(raw)
    obj["to_network"] = "ca"
    assert code_of(canonical_bytes(obj), open_it=False) is Code.BAD_SIGNATURE

    # tx's board is rotated in the compact without a new tx roster: the held one no longer
    # verifies against the board the compact names
    new_tx = TestNetwork("tx", TestNetwork.make("tx").board, tx.hub_keys, tx.agencies)
    rotated = sign_compact(next_value(v1, [new_tx, hi, ca]), [hi, ca], only={
        "tx": tx.board.keys[:2] + new_tx.board.keys[:2]})
    await store.accept([rotated])
    assert code_of(raw) is Code.FOREIGN_ROSTER_INVALID
    # a tx roster signed by the new board is accepted and resolves again
    value = new_tx.board.roster(2, nodes=tx.entries(), now=NOW, prev=tx_roster)
    rbytes = canonical_bytes(value.model_dump(mode="json"))
    signed = build_signed(value, [roster_signature(k, rbytes) for k in new_tx.board.keys[:2]])
    await foreign.accept_document("tx", signed.to_bytes())
    fresh = _envelope(tx, hi, RosterRef(version=2, sha256=signed.sha256), n=2)
    assert open_interstate_envelope(
        fresh, me_network="hi", me="agency-a", enc_key=hi.agencies["agency-a"].enc_key,
        resolver=foreign, now_ms=NOW).outer.roster.version == 2

    # ca removed: its nodes are refused from that version on
    await store.accept([sign_compact(next_value(rotated, [new_tx, hi]), [new_tx, hi])])
    ca_env = build_interstate_envelope(
        sender=_sender(ca.agencies["agency-a"], "agency-a"), from_network="ca",
        to_network="hi", to="agency-a", recipient_enc_key=hi.agencies["agency-a"].enc_public_bytes,
        msg_type=MessageType.ACTIVATION_REQUEST,
        body=sample_bodies()[MessageType.ACTIVATION_REQUEST], msg_id=ulid(3),
        created_ts=NOW, expires_ts=NOW + 1, roster=ref)
    assert code_of(ca_env) is Code.NETWORK_NOT_IN_COMPACT
    record("security-interstate-envelope", area="security",
           case="interstate envelopes are trusted only through the compact and a foreign "
                "roster verified against it",
           how="real compact and foreign rosters on SQLite and PostgreSQL; v2 envelopes from "
               "another network before its roster is held, to an unknown network, naming an "
               "unknown roster version, re-addressed by a relay, after the network's board "
               "was rotated in the compact, and from a network removed from the compact",
           result="foreign_roster_invalid, unknown_network, roster_mismatch, bad_signature, "
                  "foreign_roster_invalid, network_not_in_compact; accepted again once a "
                  "roster signed by the new board is stored")


def test_same_network_and_v1_forms_are_kept_apart() -> None:
    tx, hi = TestNetwork.make("tx"), TestNetwork.make("hi")
    ref = RosterRef(version=1, sha256=tx.roster().sha256)
    with pytest.raises(ProtocolError) as err:
        _envelope(tx, hi, ref, to_network="tx")
    assert err.value.code is Code.MALFORMED
    a = tx.agencies["agency-a"]
    v1 = build_envelope(
        sender=_sender(a, "agency-a"), to="agency-b", recipient_enc_key=a.enc_public_bytes,
        msg_type=MessageType.ACTIVATION_REQUEST,
        body=sample_bodies()[MessageType.ACTIVATION_REQUEST], msg_id=ulid(1),
        created_ts=NOW, expires_ts=NOW + 1, roster=ref)
    assert envelope_version(v1) == 1 and b"network" not in v1
