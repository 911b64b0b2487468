"""Compact acceptance in memory: thresholds per member board, the accepting hub's own board,
chained monotonic versions, freeze, rollback, split view, removal (WIRE section 16)."""

from __future__ import annotations

import pytest

from federation.clock import FakeClock
from federation.compact_state import CompactState
from federation.errors import FedCode, FederationError
from protocol.compact import build_signed_compact
from protocol.errors import Code, ProtocolError
from tests.interstate.compacts import (
    DAY,
    NOW,
    TestNetwork,
    compact_value,
    next_value,
    sign_compact,
)


@pytest.fixture
def nets() -> tuple[TestNetwork, TestNetwork, TestNetwork]:
    return TestNetwork.make("tx"), TestNetwork.make("hi"), TestNetwork.make("ca")


def refused(code: str, state: CompactState, *chain: object) -> FederationError:
    before = (state.version, state.signed)
    with pytest.raises(FederationError) as err:
        state.offer(list(chain))  # type: ignore[arg-type]
    assert err.value.code == code, err.value
    assert (state.version, state.signed) == before  # nothing adopted
    return err.value


def test_accepts_a_compact_signed_by_every_member_board(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    assert state.offer([v1]) == [v1]
    assert state.current is not None and state.current.has("hi")
    m = state.current.network("hi")
    assert m.hub_id == "hub-hi" and m.threshold == 2 and len(m.board_keys) == 3
    assert m.hub_sign_keys == {hi.hub_keys.key_id: hi.hub_keys.verify_key_bytes}
    assert [n.network_id for n in state.current.members()] == ["hi", "tx"]


def test_too_few_of_one_board_is_refused(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    short = sign_compact(compact_value([tx, hi]), [tx], only={"hi": hi.board.keys[:1]})
    err = refused(FedCode.COMPACT_THRESHOLD, state, short)
    assert "hi's board" in err.message
    # signatures of hi's board filed under tx do not count for hi
    misfiled = sign_compact(compact_value([tx, hi]), [tx], only={"tx": tx.board.keys[:2]})
    refused(FedCode.COMPACT_THRESHOLD, state, misfiled)


def test_the_accepting_hubs_own_pinned_board_must_sign(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    pinned = TestNetwork.make("tx")  # the board tx's hub pinned at install
    state = CompactState(FakeClock(NOW), pinned.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])  # tx listed with another board
    err = refused(FedCode.COMPACT_THRESHOLD, state, v1)
    assert "pinned board" in err.message


def test_a_compact_not_listing_our_network_is_refused(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, ca = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    refused(Code.NETWORK_NOT_IN_COMPACT, state, sign_compact(compact_value([hi, ca]), [hi, ca]))


def test_chain_rollback_gap_and_freeze(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    clock = FakeClock(NOW)
    state = CompactState(clock, tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    v2 = sign_compact(next_value(v1, [tx, hi]), [tx, hi])
    assert state.offer([v1, v2]) == [v1, v2]
    other_v1 = sign_compact(compact_value([tx, hi], now=NOW + 1), [tx, hi])
    wrong_chain = sign_compact(next_value(v2, [tx, hi], prev_sha256=other_v1.sha256), [tx, hi])
    refused(FedCode.COMPACT_CHAIN, state, wrong_chain)
    gap = sign_compact(compact_value([tx, hi], version=4, prev=v2), [tx, hi])
    refused(FedCode.COMPACT_VERSION, state, gap)
    other_id = sign_compact(next_value(v2, [tx, hi], compact_id="another"), [tx, hi])
    refused(FedCode.COMPACT_CHAIN, state, other_id)
    # rollback: a lower version this server never held
    fresh = CompactState(clock, tx.pin())
    fresh.offer([v1, v2])
    fresh._accepted.pop(1)  # as if only v2 was ever loaded
    refused(FedCode.COMPACT_VERSION, fresh, v1)
    # freeze: an expired compact is refused
    v3 = sign_compact(next_value(v2, [tx, hi], expires_ts=NOW + DAY), [tx, hi])
    clock.set(NOW + 2 * DAY)
    refused(FedCode.COMPACT_EXPIRED, state, v3)
    future = sign_compact(next_value(v2, [tx, hi], issued_ts=NOW + 10 * DAY), [tx, hi])
    refused(FedCode.COMPACT_NOT_YET_VALID, state, future)


def test_split_view_is_alarmed_and_an_edited_copy_is_not(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    v2 = sign_compact(next_value(v1, [tx, hi]), [tx, hi])
    state.offer([v1, v2])
    # an edited copy of version 2 (signatures no longer verify): refused, no alarm
    value = dict(v2.compact_value, expires_ts=v2.compact.expires_ts + 1)
    edited = build_signed_compact(value, v2.signatures)
    refused(FedCode.BAD_SIGNATURES, state, edited)
    assert state.take_alarms() == []
    # a second validly signed version 2: split view, alarmed once
    twin = sign_compact(next_value(v1, [tx, hi], now=NOW + 5), [tx, hi])
    refused(FedCode.SPLIT_VIEW, state, twin)
    alarms = state.take_alarms()
    assert [a.kind for a in alarms] == ["split_view"]
    assert alarms[0].detail["document"] == "compact" and "compact" in alarms[0].reason
    assert state.signed == v2


def test_removed_network_is_refused_from_the_next_version_on(
    nets: tuple[TestNetwork, ...],
) -> None:
    tx, hi, ca = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    v1 = sign_compact(compact_value([tx, hi, ca]), [tx, hi, ca])
    state.offer([v1])
    assert state.check_network("ca").hub_id == "hub-ca"
    # ca is removed by the others; ca's board does not sign its own removal
    v2 = sign_compact(next_value(v1, [tx, hi]), [tx, hi])
    state.offer([v2])
    with pytest.raises(ProtocolError) as err:
        state.check_network("ca")
    assert err.value.code is Code.NETWORK_NOT_IN_COMPACT
    with pytest.raises(ProtocolError) as err:
        state.check_network("ny")
    assert err.value.code is Code.UNKNOWN_NETWORK
    assert CompactState(FakeClock(NOW), tx.pin()).current is None


def test_a_members_board_cannot_be_swapped_by_the_others(nets: tuple[TestNetwork, ...]) -> None:
    tx, hi, _ = nets
    state = CompactState(FakeClock(NOW), tx.pin())
    v1 = sign_compact(compact_value([tx, hi]), [tx, hi])
    state.offer([v1])
    fake_hi = TestNetwork.make("hi")
    swapped = sign_compact(next_value(v1, [tx, fake_hi]), [tx, fake_hi])
    err = refused(FedCode.COMPACT_THRESHOLD, state, swapped)
    assert "version 1" in err.message
    # a real rotation: hi's old board and its new one both sign
    rotated_value = next_value(v1, [tx, fake_hi])
    rotated = sign_compact(rotated_value, [tx], only={
        "hi": hi.board.keys[:2] + fake_hi.board.keys[:2]})
    assert state.offer([rotated]) == [rotated]
