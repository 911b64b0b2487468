"""Property tests of the new parsers: a compact document, an interstate envelope, a
qualified name and a network id. Whatever the input, a parser either accepts it or refuses
it with its stable code; nothing else escapes, and a damaged signed document never passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.clock import FakeClock
from federation.compact_acceptance import CompactPin, parse_compact_document
from federation.compact_state import CompactState
from federation.errors import FederationError
from federation.roster_acceptance import BoardPin
from protocol.canonical import canonical_bytes, parse_json
from protocol.compact import parse_signed_compact
from protocol.envelope_interstate_check import check_interstate_outer, envelope_version
from protocol.errors import Code, ProtocolError
from protocol.ids import (
    NETWORK_ID_PATTERN,
    is_network_id,
    parse_qualified,
    qualified_name,
)
from tests.fuzz.test_parsers import json_value, mutated, spliced
from tests.interstate.test_interstate_vectors import VectorResolver

PROPS = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))
VECTORS = Path(__file__).resolve().parents[1] / "vectors"
COMPACTS = json.loads((VECTORS / "compact.json").read_text(encoding="utf-8"))
ENVELOPES = json.loads((VECTORS / "interstate_envelopes.json").read_text(encoding="utf-8"))
V1_DOC = COMPACTS["versions"][0]["document"].encode()
ENVELOPE = ENVELOPES["cases"][0]["envelope"].encode()
AT = ENVELOPES["cases"][0]["open_at_ms"]


def _tx_state() -> CompactState:
    tx = parse_signed_compact(V1_DOC).compact.network("tx")
    return CompactState(FakeClock(AT), CompactPin("tx", BoardPin(tx.board_keys, tx.threshold)))


@PROPS
@given(doc=st.one_of(mutated(parse_json(V1_DOC)), json_value))
def test_compact_parser_accepts_or_refuses_with_a_code(doc: Any) -> None:
    try:
        data = canonical_bytes(doc)
    except ProtocolError:
        data = json.dumps(doc).encode()
    try:
        signed = parse_compact_document(data)
    except FederationError as exc:
        assert exc.code == "bad_compact"
        return
    # it parsed: a changed compact value never passes acceptance with the old signatures
    try:
        _tx_state().offer([signed])
    except FederationError:
        return
    assert signed.compact_bytes == parse_signed_compact(V1_DOC).compact_bytes


@PROPS
@given(raw=st.one_of(spliced(ENVELOPE), st.binary(max_size=300)))
def test_interstate_outer_check_accepts_only_the_signed_bytes(raw: bytes) -> None:
    try:
        outer = check_interstate_outer(raw, resolver=VectorResolver(), now_ms=AT)
    except ProtocolError as exc:
        assert exc.code in Code
        return
    assert outer.sender == "tx/agency-a" and parse_json(raw) == parse_json(ENVELOPE)


@PROPS
@given(raw=st.one_of(spliced(ENVELOPE), st.binary(max_size=200)))
def test_envelope_version_is_1_2_or_a_refusal(raw: bytes) -> None:
    try:
        assert envelope_version(raw) in (1, 2)
    except ProtocolError as exc:
        assert exc.code in (Code.MALFORMED, Code.TOO_LARGE)


@PROPS
@given(network=st.from_regex(NETWORK_ID_PATTERN, fullmatch=True),
       node=st.from_regex(r"[a-z0-9][a-z0-9-]{2,62}", fullmatch=True))
def test_qualified_names_round_trip(network: str, node: str) -> None:
    assert parse_qualified(qualified_name(network, node)) == (network, node)


@PROPS
@given(name=st.one_of(st.text(max_size=80), st.builds(lambda a, b: f"{a}/{b}",
                                                       st.text(max_size=33), st.text(max_size=64))))
def test_qualified_name_parser_refuses_with_malformed(name: str) -> None:
    try:
        network, node = parse_qualified(name)
    except ProtocolError as exc:
        assert exc.code is Code.MALFORMED
        return
    assert is_network_id(network) and f"{network}/{node}" == name
