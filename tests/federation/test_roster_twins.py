"""A document for a roster version already held is judged on its own signatures first.

Only a twin that passes the acceptance rules the held version passed is a split view (alarm
with a reason in words); an edited copy is `bad_signatures`, a copy signed by other keys
`roster_threshold`, a twin that does not chain `roster_chain`: refused, and no alarm.
"""

from __future__ import annotations

import json

import pytest

from federation.clock import FakeClock
from federation.errors import FedCode, FederationError
from federation.roster import SignedRoster, build_signed, parse_signed_roster
from federation.roster_state import RosterState
from protocol.encoding import b64u
from protocol.errors import ProtocolError
from tests.federation.boards import DAY, TestBoard

NOW = 1_780_000_000_000


def _edited(signed: SignedRoster, **changes: object) -> SignedRoster:
    doc = json.loads(signed.to_bytes())
    doc["roster"].update(changes)
    return parse_signed_roster(json.dumps(doc).encode())


def _refused(state: RosterState, doc: SignedRoster) -> str:
    held = dict(state._hashes)
    with pytest.raises(FederationError) as e:
        state.offer([doc], source="peer-x")
    assert state.take_alarms() == [] and state._hashes == held
    return e.value.code


def test_edited_or_foreign_twins_are_refused_without_an_alarm() -> None:
    b = TestBoard.make(3, 2)
    state = RosterState(FakeClock(NOW), b.pin())
    v1 = b.sign(b.roster(now=NOW))
    v2 = b.sign(b.next(v1, now=NOW))
    state.offer([v1, v2])
    assert _refused(state, _edited(v1, expires_ts=v1.roster.expires_ts + 1)) == \
        FedCode.BAD_SIGNATURES
    assert _refused(state, _edited(v2, issued_ts=NOW - 1)) == FedCode.BAD_SIGNATURES
    outsider = TestBoard.make(2, 2)
    assert _refused(state, outsider.sign(b.roster(now=NOW + 1))) == FedCode.ROSTER_THRESHOLD
    assert _refused(state, b.sign(b.roster(now=NOW + 1), b.keys[:1])) == \
        FedCode.ROSTER_THRESHOLD
    other_v1 = b.sign(b.roster(now=NOW + 2))
    unchained = b.sign(b.next(other_v1, now=NOW))  # a v2 that follows another v1
    assert _refused(state, unchained) == FedCode.ROSTER_CHAIN
    # A newer version edited after signing says so too (it was roster_threshold before).
    v3 = b.sign(b.next(v2, now=NOW))
    with pytest.raises(FederationError) as e:
        state.offer([_edited(v3, expires_ts=v3.roster.expires_ts + 1)])
    assert e.value.code == FedCode.BAD_SIGNATURES and state.version == 2


def test_validly_signed_twins_raise_one_alarm_with_a_reason() -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(3, 2)
    state = RosterState(clock, b.pin())
    v1 = b.sign(b.roster(now=NOW, expires_in=DAY))
    v2 = b.sign(b.next(v1, now=NOW))
    state.offer([v1, v2])
    twin2 = b.sign(b.next(v1, now=NOW + 9))
    with pytest.raises(FederationError) as e:
        state.offer([twin2], source="peer-x")
    assert e.value.code == FedCode.SPLIT_VIEW and "both validly signed" in e.value.message
    [alarm] = state.take_alarms()
    assert alarm.kind == "split_view" and alarm.detail["evidence"] == "document"
    assert alarm.detail["version"] == 2 and alarm.detail["seen_sha256"] == twin2.sha256
    assert "both claim version 2" in alarm.reason and "peer-x" in alarm.reason
    # Dates do not matter for a twin: an expired one still proves two signed rosters.
    clock.advance(2 * DAY)
    old_twin = b.sign(b.roster(now=NOW + 3, expires_in=DAY))
    with pytest.raises(FederationError) as e:
        state.offer([old_twin])
    assert e.value.code == FedCode.SPLIT_VIEW and len(state.take_alarms()) == 1


def test_without_a_pin_a_v1_twin_is_checked_against_the_held_board() -> None:
    b = TestBoard.make(3, 2)
    v1 = b.sign(b.roster(now=NOW))
    state = RosterState(FakeClock(NOW), None)
    state.load([v1])
    assert _refused(state, _edited(v1, issued_ts=NOW - 5)) == FedCode.BAD_SIGNATURES
    with pytest.raises(FederationError) as e:
        state.offer([b.sign(b.roster(now=NOW + 1))])
    assert e.value.code == FedCode.SPLIT_VIEW and len(state.take_alarms()) == 1


def test_an_envelope_naming_another_hash_is_explained_as_such() -> None:
    b = TestBoard.make(1, 1)
    state = RosterState(FakeClock(NOW), b.pin())
    state.offer([b.sign(b.roster(now=NOW))])
    with pytest.raises(ProtocolError):
        state.check_roster(1, b64u(bytes(32)), source="agency-9")
    [alarm] = state.take_alarms()
    assert alarm.detail["evidence"] == "envelope"
    assert alarm.reason.startswith("A message from agency-9 named roster version 1")


def test_signatures_moved_onto_other_bytes_are_bad_signatures() -> None:
    b = TestBoard.make(3, 2)
    good = b.sign(b.roster(now=NOW))
    forged = build_signed(b.roster(now=NOW + 1), list(good.signatures))
    state = RosterState(FakeClock(NOW), b.pin())
    with pytest.raises(FederationError) as e:
        state.offer([forged])
    assert e.value.code == FedCode.BAD_SIGNATURES and state.current is None
