"""The interstate golden vectors (compact.json, interstate_envelopes.json) reproduce and
verify; intra-network vectors keep their bytes (tests/protocol/test_vectors.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.public
import pytest

from federation.clock import FakeClock
from federation.compact_acceptance import CompactPin, parse_compact_document
from federation.compact_state import CompactState
from federation.errors import FederationError
from federation.roster_acceptance import BoardPin
from protocol.encoding import unb64u
from protocol.envelope_interstate_check import (
    check_interstate_outer,
    envelope_version,
    open_interstate_envelope,
)
from protocol.errors import Code, ProtocolError
from protocol.signing import Context, signing_input
from tests.vectors import interstate_vectors
from tests.vectors.generate import ROSTER, T0, enc_key, signing_key

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_vector_files_are_what_the_generator_builds() -> None:
    assert load("compact.json") == json.loads(json.dumps(interstate_vectors.build_compact()))
    built = json.loads(json.dumps(interstate_vectors.build_envelopes()))
    assert load("interstate_envelopes.json") == built


def test_compact_vectors_verify_and_chain() -> None:
    doc = load("compact.json")
    ctx = doc["signature_context"]
    data = ctx["data_utf8"].encode()
    assert unb64u(ctx["signing_input_b64u"]) == b"peernet/v1/compact\0" + data
    assert unb64u(ctx["signing_input_b64u"]) == signing_input(Context.COMPACT, data)
    v1, v2 = (parse_compact_document(v["document"].encode()) for v in doc["versions"])
    for signed, case in zip((v1, v2), doc["versions"], strict=True):
        assert signed.compact_bytes.decode() == case["compact_canonical"]
        assert signed.sha256 == case["sha256"] and signed.to_bytes().decode() == case["document"]
    tx = v1.compact.network("tx")
    pin = CompactPin("tx", BoardPin(tx.board_keys, tx.threshold))
    state = CompactState(FakeClock(T0 + 2 * 86_400_000), pin)
    assert state.offer([v1, v2]) == [v1, v2]
    with pytest.raises(ProtocolError) as err:
        state.check_network("hi")
    assert err.value.code is Code.NETWORK_NOT_IN_COMPACT
    hi = v1.compact.network("hi")
    with pytest.raises(FederationError) as ferr:  # hi's own hub never accepts its removal
        CompactState(FakeClock(T0), CompactPin("hi", BoardPin(hi.board_keys, 2))).offer([v1, v2])
    assert ferr.value.code == Code.NETWORK_NOT_IN_COMPACT


@dataclass
class VectorResolver:
    """The receiver's view the vector file states (see its `about`)."""

    members: set[str] = field(default_factory=lambda: {"tx", "hi", "az"})
    removed: set[str] = field(default_factory=lambda: {"ca"})

    def check_network(self, network_id: str) -> None:
        if network_id in self.removed:
            raise ProtocolError(Code.NETWORK_NOT_IN_COMPACT, "removed")
        if network_id not in self.members:
            raise ProtocolError(Code.UNKNOWN_NETWORK, "unknown")

    def verify_key(self, network_id: str, node_id: str, key_id: str, at_ms: int) -> bytes:
        self.check_network(network_id)
        if key_id != "ed25519:1":
            raise ProtocolError(Code.UNKNOWN_KEY, "key")
        return bytes(signing_key(node_id).verify_key)

    def check_roster(self, network_id: str, version: int, sha256: str) -> None:
        if (version, sha256) != (ROSTER.version, ROSTER.sha256):
            raise ProtocolError(Code.ROSTER_MISMATCH, "roster")


def _open(envelope: bytes, open_as: str, at: int) -> Any:
    network, node = open_as.split("/")
    return open_interstate_envelope(
        envelope, me_network=network, me=node, enc_key=enc_key(node),
        resolver=VectorResolver(), now_ms=at,
    )


def test_envelope_vectors_open() -> None:
    for case in load("interstate_envelopes.json")["cases"]:
        raw = case["envelope"].encode()
        assert envelope_version(raw) == 2
        outer = check_interstate_outer(raw, resolver=VectorResolver(), now_ms=case["open_at_ms"])
        assert (outer.sender, outer.recipient) == (case["from"], case["to"])
        opened = _open(raw, case["open_as"], case["open_at_ms"])
        assert opened.inner_bytes.decode() == case["inner_text"]
        assert opened.outer.roster.sha256 == case["roster"]["sha256"]


def test_envelope_refusal_vectors() -> None:
    doc = load("interstate_envelopes.json")
    at = doc["cases"][0]["open_at_ms"] + 900_000
    for case in doc["refusals"]:
        raw = case["envelope"].encode()
        with pytest.raises(ProtocolError) as err:
            if case["check"] == "relay":
                check_interstate_outer(raw, resolver=VectorResolver(), now_ms=at)
            else:
                _open(raw, "hi/agency-b", at)
        assert err.value.code.value == case["code"], case["name"]


def test_intra_network_envelopes_stay_version_1() -> None:
    for case in load("envelopes.json")["cases"]:
        assert envelope_version(case["envelope"].encode()) == 1
    _ = nacl.public  # the v1 vectors themselves are checked by tests/protocol/test_vectors.py
