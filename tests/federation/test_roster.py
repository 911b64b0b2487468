"""Roster acceptance rules (DESIGN section 5) and the RosterState key resolver."""

from __future__ import annotations

import pytest

from federation.clock import FakeClock
from federation.errors import FedCode, FederationError
from federation.keystore import NodeKeys
from federation.roster import Revocation, build_signed, parse_signed_roster, roster_signature
from federation.roster_acceptance import accept_first, accept_next
from federation.roster_state import RosterState
from protocol.encoding import b64u
from protocol.errors import Code, ProtocolError
from tests.federation.boards import DAY, TestBoard, node_entry

NOW = 1_780_000_000_000


def _code(exc: pytest.ExceptionInfo[FederationError]) -> str:
    return exc.value.code


def test_version_one_needs_threshold_of_pinned_keys() -> None:
    b = TestBoard.make(3, 2)
    ok = b.sign(b.roster(now=NOW))
    accept_first(ok, b.pin(), NOW)
    short = b.sign(b.roster(now=NOW), b.keys[:1])
    with pytest.raises(FederationError) as e:
        accept_first(short, b.pin(), NOW)
    assert _code(e) == FedCode.ROSTER_THRESHOLD


def test_distinct_keys_counted_not_signatures() -> None:
    b = TestBoard.make(3, 2)
    r = b.sign(b.roster(now=NOW), [b.keys[0], b.keys[0], b.keys[0]])
    assert len(r.signatures) == 3
    with pytest.raises(FederationError) as e:
        accept_first(r, b.pin(), NOW)
    assert _code(e) == FedCode.ROSTER_THRESHOLD


def test_signatures_by_outsiders_or_over_other_bytes_do_not_count() -> None:
    b = TestBoard.make(3, 2)
    outsider = TestBoard.make(1, 1).keys[0]
    r = b.sign(b.roster(now=NOW), [b.keys[0], outsider])
    with pytest.raises(FederationError):
        accept_first(r, b.pin(), NOW)
    # A valid signature moved onto a changed roster no longer verifies.
    good = b.sign(b.roster(now=NOW))
    changed = b.roster(now=NOW + 1)
    forged = build_signed(changed, list(good.signatures))
    with pytest.raises(FederationError) as e:
        accept_first(forged, b.pin(), NOW)
    assert _code(e) == FedCode.ROSTER_THRESHOLD


def test_version_one_must_also_satisfy_its_own_board() -> None:
    pinned = TestBoard.make(3, 2)
    other = TestBoard.make(3, 2)
    # Signed by the pinned keys but naming another board.
    r = pinned.sign(pinned.roster(now=NOW, board=other.board()))
    with pytest.raises(FederationError) as e:
        accept_first(r, pinned.pin(), NOW)
    assert _code(e) == FedCode.ROSTER_THRESHOLD


def test_next_version_must_be_exactly_n_plus_one_and_chain() -> None:
    b = TestBoard.make(3, 2)
    v1 = b.sign(b.roster(now=NOW))
    v2 = b.sign(b.next(v1, now=NOW))
    accept_next(v1, v2, NOW)
    v3 = b.sign(b.next(v2, now=NOW))
    with pytest.raises(FederationError) as e:
        accept_next(v1, v3, NOW)
    assert _code(e) == FedCode.ROSTER_VERSION
    other_v1 = b.sign(b.roster(now=NOW + 5))
    bad_chain = b.sign(b.next(other_v1, now=NOW))
    with pytest.raises(FederationError) as e:
        accept_next(v1, bad_chain, NOW)
    assert _code(e) == FedCode.ROSTER_CHAIN


def test_board_change_needs_old_and_new_board() -> None:
    old = TestBoard.make(3, 2)
    new = TestBoard.make(3, 2)
    v1 = old.sign(old.roster(now=NOW))
    draft = old.next(v1, now=NOW, board=new.board())
    only_new = new.sign(draft)
    only_old = old.sign(draft)
    both = build_signed(draft, list(only_old.signatures) + list(only_new.signatures))
    for bad in (only_new, only_old):
        with pytest.raises(FederationError) as e:
            accept_next(v1, bad, NOW)
        assert _code(e) == FedCode.ROSTER_THRESHOLD
    accept_next(v1, both, NOW)


def test_expiry_is_inclusive_ms() -> None:
    b = TestBoard.make(1, 1)
    r = b.sign(b.roster(now=NOW, expires_in=DAY))
    accept_first(r, b.pin(), NOW + DAY)
    with pytest.raises(FederationError) as e:
        accept_first(r, b.pin(), NOW + DAY + 1)
    assert _code(e) == FedCode.ROSTER_EXPIRED


def test_revoked_board_key_does_not_count() -> None:
    b = TestBoard.make(3, 2)
    v1 = b.sign(b.roster(now=NOW))
    rev = Revocation(key=b64u(bytes(b.keys[0].verify_key)), revoked_ts=NOW, reason="lost")
    draft = b.next(v1, now=NOW, revoked=[rev.model_dump()])
    with pytest.raises(FederationError):
        accept_next(v1, b.sign(draft, b.keys[:2]), NOW)
    accept_next(v1, b.sign(draft, b.keys[1:]), NOW)


def test_parse_refuses_unknown_fields_and_bad_shapes() -> None:
    b = TestBoard.make(1, 1)
    good = b.sign(b.roster(now=NOW)).to_bytes()
    assert parse_signed_roster(good).version == 1
    for bad in (
        good.replace(b'"version":1', b'"version":1,"extra":1'),
        good.replace(b'"signatures"', b'"sigs"'),
        b"[]",
        b'{"roster": 1, "roster": 2}',
    ):
        with pytest.raises(FederationError) as e:
            parse_signed_roster(bad)
        assert _code(e) == FedCode.BAD_ROSTER


def _state_with(nodes_keys: dict[str, NodeKeys], clock: FakeClock, **kw: object) -> RosterState:
    b = TestBoard.make(1, 1)
    entries = [node_entry(n, k, **kw) for n, k in nodes_keys.items()]  # type: ignore[arg-type]
    state = RosterState(clock, b.pin())
    state.offer([b.sign(b.roster(now=clock.now_ms(), nodes=entries))])
    return state


def test_key_resolver_valid_until_and_old_keys() -> None:
    clock = FakeClock(NOW)
    k = NodeKeys.generate()
    state = _state_with({"alpha-fd": k}, clock, valid_until=NOW + 10)
    assert state.verify_key("alpha-fd", k.key_id, NOW + 10) == k.verify_key_bytes
    with pytest.raises(ProtocolError) as e:
        state.verify_key("alpha-fd", k.key_id, NOW + 11)
    assert e.value.code is Code.UNKNOWN_KEY
    with pytest.raises(ProtocolError) as e:
        state.verify_key("alpha-fd", "ed25519:9", NOW)
    assert e.value.code is Code.UNKNOWN_KEY
    with pytest.raises(ProtocolError) as e:
        state.verify_key("nobody-fd", k.key_id, NOW)
    assert e.value.code is Code.UNKNOWN_SENDER
    rotated = k.rotated()
    state2 = _state_with({"alpha-fd": rotated}, clock)
    assert state2.verify_key("alpha-fd", "ed25519:1", 0) == k.verify_key_bytes
    with pytest.raises(ProtocolError):
        state2.verify_key("alpha-fd", "ed25519:1", 1)


def test_revoked_key_refused_whatever_the_timestamp() -> None:
    clock = FakeClock(NOW)
    k = NodeKeys.generate()
    b = TestBoard.make(1, 1)
    rev = Revocation(key=b64u(k.verify_key_bytes), revoked_ts=NOW, reason="stolen laptop")
    state = RosterState(clock, b.pin())
    state.offer([b.sign(b.roster(now=NOW, nodes=[node_entry("alpha-fd", k)], revoked=[rev]))])
    for at in (0, NOW - DAY, NOW, NOW + DAY):
        with pytest.raises(ProtocolError) as e:
            state.verify_key("alpha-fd", k.key_id, at)
        assert e.value.code is Code.REVOKED_KEY


def test_split_view_detected_and_alarmed() -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(1, 1)
    state = RosterState(clock, b.pin())
    v1 = b.sign(b.roster(now=NOW))
    assert state.offer([v1]) == [v1]
    assert state.offer([v1]) == []  # same version, same hash: nothing new
    other = b.sign(b.roster(now=NOW + 1))
    with pytest.raises(FederationError) as e:
        state.offer([other], source="hub-state")
    assert _code(e) == FedCode.SPLIT_VIEW
    alarms = state.take_alarms()
    assert [a.kind for a in alarms] == ["split_view"]
    assert alarms[0].detail["seen_sha256"] == other.sha256
    # From an envelope's roster reference.
    with pytest.raises(ProtocolError) as pe:
        state.check_roster(1, b64u(bytes(32)))
    assert pe.value.code is Code.ROSTER_MISMATCH
    assert len(state.take_alarms()) == 1
    state.check_roster(1, v1.sha256)
    with pytest.raises(ProtocolError):
        state.check_roster(2, v1.sha256)  # unknown version: mismatch, no alarm
    assert state.take_alarms() == []


def test_expired_roster_is_refused_for_envelopes() -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(1, 1)
    state = RosterState(clock, b.pin())
    v1 = b.sign(b.roster(now=NOW, expires_in=1000))
    state.offer([v1])
    state.check_roster(1, v1.sha256)
    clock.advance(1001)
    with pytest.raises(ProtocolError) as e:
        state.check_roster(1, v1.sha256)
    assert e.value.code is Code.ROSTER_MISMATCH


def test_catch_up_over_expired_links_needs_only_newest_fresh() -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(2, 2)
    v1 = b.sign(b.roster(now=NOW, expires_in=DAY))
    v2 = b.sign(b.next(v1, now=NOW + DAY // 2).model_copy(update={"expires_ts": NOW + DAY}))
    v3 = b.sign(b.next(v2, now=NOW + 2 * DAY))
    clock.set(NOW + 2 * DAY)
    state = RosterState(clock, b.pin())
    assert [s.version for s in state.offer([v3, v1, v2])] == [1, 2, 3]
    assert state.version == 3
    # A chain that does not pass leaves nothing adopted.
    state2 = RosterState(clock, b.pin())
    with pytest.raises(FederationError):
        state2.offer([v1, v2])  # newest (v2) is expired
    assert state2.current is None


def test_roster_signature_helper_round_trip() -> None:
    b = TestBoard.make(1, 1)
    r = b.sign(b.roster(now=NOW))
    sig = roster_signature(b.keys[0], r.roster_bytes)
    assert sig.key == b64u(bytes(b.keys[0].verify_key))


def test_directory_and_activation_rules() -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(1, 1)
    ks = {n: NodeKeys.generate() for n in ("alpha-fd", "beta-pd", "hub-state")}
    nodes = [
        node_entry("alpha-fd", ks["alpha-fd"], disciplines=["fire"], region="north"),
        node_entry("beta-pd", ks["beta-pd"], disciplines=["law_enforcement"], region="south"),
        node_entry("hub-state", ks["hub-state"], roles=["hub"], disciplines=[], region="north"),
    ]
    from federation.roster import ActivationRule, Policy

    policy = Policy(
        activation_rules=[
            ActivationRule(requesters=["region:north"], responders=["discipline:law_enforcement"])
        ]
    )
    state = RosterState(clock, b.pin())
    state.offer([b.sign(b.roster(now=NOW, nodes=nodes, policy=policy))])
    assert [n.node_id for n in state.nodes(discipline="fire")] == ["alpha-fd"]
    assert [n.node_id for n in state.nodes(region="north")] == ["alpha-fd", "hub-state"]
    assert [n.node_id for n in state.hubs()] == ["hub-state"]
    assert state.enc_key("beta-pd") == ks["beta-pd"].enc_public_bytes
    assert state.may_request("alpha-fd", "beta-pd")
    assert not state.may_request("beta-pd", "alpha-fd")
    with pytest.raises(FederationError) as e:
        state.node("nobody-xx")
    assert _code(e) == FedCode.UNKNOWN_NODE
