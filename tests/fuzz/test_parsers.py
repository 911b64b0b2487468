"""Hypothesis against every inbound parser: whatever arrives, the parser answers a value or
its package's stable refusal (`ProtocolError` / `FederationError` with a registered code,
pydantic `ValidationError` for API bodies), never another exception, and a mutated input
never opens as something else.

Inputs are random bytes, random JSON, and mutations of valid documents (a key dropped,
added or replaced, a value swapped for random JSON, a character flipped, the bytes cut or
spliced). Parsers covered: batches (`parse_batch`), envelopes at the hub
(`check_outer`) and at the recipient (`open_envelope`), per-hop request headers
(`verify_request`), signed rosters (`parse_signed_roster` + `RosterState.offer`), node info
documents (`parse_node_info`), releases (`verify_release`), batch responses
(`parse_batch_response`), and every API body and query model of the node's route table.
Examples are bounded and derandomized, so the run is the same every time and takes seconds.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.errors import HTTP_STATUS as FED_STATUS
from federation.errors import FederationError
from federation.keystore import NodeKeys
from federation.node_info import parse_node_info
from federation.roster import parse_signed_roster
from federation.roster_state import RosterState
from protocol.batch import parse_batch, parse_batch_response
from protocol.canonical import canonical_bytes, parse_json
from protocol.envelope_outer import check_outer
from protocol.errors import Code, ProtocolError
from protocol.messages import MessageType
from protocol.release import verify_release
from protocol.request_auth import sign_request, verify_request
from tests.federation.boards import TestBoard, node_entry
from tests.protocol.factories import (
    DAY,
    T0,
    Directory,
    KnownRoster,
    make_envelope,
    open_as,
    sample_bodies,
)
from tests.vectors.generate import sender

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
RUNS: Counter[str] = Counter()
CODES = {c.value for c in Code}

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=True), st.text(max_size=30),
                      st.sampled_from(["", "agency-a", "agency-b", "ed25519:1", "AAAA", "v",
                                       "01ARZ3NDEKTSV4RRFFQ69G5FAV"]))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], fn: Any) -> Any:
    if not path:
        return fn(doc)
    doc = dict(doc) if isinstance(doc, dict) else list(doc)
    doc[path[0]] = _set(doc[path[0]], path[1:], fn)
    return doc


@st.composite
def mutated(draw: Any, doc: Any) -> Any:
    """One to three structural mutations of a JSON document."""
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "drop", "add", "flip"]))
        if op == "replace":
            value = draw(json_value)
            doc = _set(doc, path, lambda _v, value=value: value)
        elif op == "drop" and path:
            parent, key = path[:-1], path[-1]
            doc = _set(doc, parent, lambda p, key=key: (
                {k: v for k, v in p.items() if k != key} if isinstance(p, dict)
                else [v for i, v in enumerate(p) if i != key]))
        elif op == "add":
            name, value = draw(st.text(min_size=1, max_size=6)), draw(json_value)
            doc = _set(doc, path, lambda p, name=name, value=value: (
                {**p, name: value} if isinstance(p, dict) else p))
        else:
            pos = draw(st.integers(0, 200))
            doc = _set(doc, path, lambda v, pos=pos: (
                v[: pos % len(v)] + chr((ord(v[pos % len(v)]) + 1) % 0x7F or 65)
                + v[pos % len(v) + 1:] if isinstance(v, str) and v else v))
    return doc


@st.composite
def spliced(draw: Any, raw: bytes) -> bytes:
    """Byte-level damage: cut, flip, insert, duplicate."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "insert", "dup"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "cut":
            del data[i:]
        elif op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[i:i] = data[i:i + 16]
    return bytes(data)


VALID = make_envelope("agency-a", "agency-b", MessageType.ACTIVATION_UPDATE)
VALID_JSON = parse_json(VALID)


def _protocol_refusal(exc: BaseException) -> bool:
    return isinstance(exc, ProtocolError) and exc.code.value in CODES


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), json_value.map(
    lambda v: json.dumps(v).encode()), st.lists(json_value, max_size=60).map(
    lambda v: json.dumps({"envelopes": v}).encode())))
def test_parse_batch(data: bytes) -> None:
    RUNS["parse_batch"] += 1
    try:
        items = parse_batch(data)
        assert isinstance(items, list) and len(items) <= 50
    except ProtocolError as exc:
        assert _protocol_refusal(exc)


@FUZZ
@given(doc=st.one_of(mutated(VALID_JSON), json_value))
def test_envelope_mutations_never_open_as_something_else(doc: Any) -> None:
    RUNS["envelope"] += 1
    raw = json.dumps(doc, allow_nan=True).encode() if not isinstance(doc, bytes) else doc
    for check in (
        lambda: check_outer(raw, keys=Directory.default(), roster=KnownRoster(), now_ms=T0),
        lambda: open_as(raw),
    ):
        try:
            out = check()
        except ProtocolError as exc:
            assert _protocol_refusal(exc)
            continue
        # Accepted only if the signed content is unchanged (key order/whitespace aside).
        assert canonical_bytes(parse_json(raw)) == VALID or doc == VALID_JSON, out


@FUZZ
@given(raw=spliced(VALID))
def test_envelope_bytes_damage(raw: bytes) -> None:
    RUNS["envelope_bytes"] += 1
    try:
        opened = open_as(raw)
    except ProtocolError as exc:
        assert _protocol_refusal(exc)
        return
    assert canonical_bytes(parse_json(raw)) == VALID, opened


def _signed_request() -> tuple[str, bytes]:
    body = b'{"envelopes":[]}'
    a = sender("agency-a")
    header = sign_request(signing_key=a.signing_key, key_version=1, method="PUT",
                          path="/fed/v1/send/t1", origin="agency-a", destination="agency-b",
                          ts=T0, body=body)
    return header, body


@FUZZ
@given(header=st.one_of(st.text(max_size=300), st.builds(
    lambda h, i, c: h[:i] + c + h[i + 1:], st.just(_signed_request()[0]),
    st.integers(0, 200), st.characters())), body=st.binary(max_size=40))
def test_request_auth_header(header: str, body: bytes) -> None:
    RUNS["request_auth"] += 1
    good_header, good_body = _signed_request()
    try:
        origin = verify_request(header, method="PUT", path="/fed/v1/send/t1", body=body,
                                me="agency-b", now_ms=T0, keys=Directory.default())
    except ProtocolError as exc:
        assert _protocol_refusal(exc)
        return
    assert origin == "agency-a" and body == good_body


_BOARD = TestBoard.make(3, 2)
_KEYS = NodeKeys.generate()
_ROSTER = _BOARD.sign(_BOARD.roster(1, nodes=[node_entry("alpha-fd", _KEYS)], now=T0))
_ROSTER_JSON = parse_json(_ROSTER.to_bytes())


def _federation_refusal(exc: BaseException) -> bool:
    return isinstance(exc, FederationError) and exc.code in FED_STATUS


@FUZZ
@given(doc=st.one_of(mutated(_ROSTER_JSON), json_value))
def test_signed_roster(doc: Any) -> None:
    RUNS["roster"] += 1
    raw = json.dumps(doc).encode()
    state = RosterState(FakeClock(T0 + 1000), _BOARD.pin())
    try:
        signed = parse_signed_roster(raw)
        state.offer([signed])
    except FederationError as exc:
        assert _federation_refusal(exc), exc
        assert state.version == 0  # nothing adopted
        return
    # adopted: then it carries a threshold of the pinned board's signatures over its bytes
    assert state.version == 1 and signed.sha256 == _ROSTER.sha256


@FUZZ
@given(doc=st.one_of(json_value, mutated(parse_json(json.dumps(
    node_entry("alpha-fd", _KEYS).model_dump(mode="json")).encode()))), raw=st.binary(
    max_size=60))
def test_node_info(doc: Any, raw: bytes) -> None:
    RUNS["node_info"] += 1
    for data in (json.dumps(doc).encode(), raw):
        try:
            parse_node_info(data)
        except FederationError as exc:
            assert _federation_refusal(exc)


_RELEASE = sample_bodies()[MessageType.AGGREGATE_RELEASE]


@FUZZ
@given(doc=st.one_of(mutated(_RELEASE), json_value))
def test_release(doc: Any) -> None:
    RUNS["release"] += 1
    try:
        out = verify_release(doc, keys=Directory.default(), at_ms=T0 + DAY, sender="agency-a")
    except ProtocolError as exc:
        assert _protocol_refusal(exc)
        return
    assert canonical_bytes(doc) == canonical_bytes(_RELEASE), out


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), json_value.map(lambda v: json.dumps(
    {"results": v}).encode())), expected=st.one_of(st.none(), st.integers(0, 5)))
def test_batch_response(data: bytes, expected: int | None) -> None:
    RUNS["batch_response"] += 1
    try:
        parse_batch_response(data, expected)
    except ProtocolError as exc:
        assert _protocol_refusal(exc)


def _api_models() -> list[tuple[str, Any]]:
    from federation.clock import FakeClock as _FC
    from node.core.appkeys import ROUTES
    from node.core.config import NodeSettings
    from node.web.app import create_app

    app = create_app(NodeSettings.load(None, node_id="fuzz-node", name="F", data_dir="/tmp",
                                       db_url="sqlite:////tmp/peernet-fuzz-never-opened.db"),
                     clock=_FC(T0), keys=_KEYS)
    out = []
    for r in app[ROUTES]:
        for kind in ("body", "query"):
            model = getattr(r, kind)
            if model is not None:
                out.append((f"{r.name}.{kind}", model))
    return out


API_MODELS = _api_models()


@FUZZ
@given(i=st.integers(0, len(API_MODELS) - 1), doc=json_value)
def test_api_body_models(i: int, doc: Any) -> None:
    name, model = API_MODELS[i]
    RUNS["api_models"] += 1
    try:
        model.model_validate(doc)
    except ValidationError:
        pass


def test_zz_record() -> None:
    """Runs last in this module (name order): writes the example counts."""
    record("fuzz-parsers", area="bad-input",
           case="Hypothesis against every inbound parser",
           how="random bytes, random JSON and 1-3 structural or byte mutations of valid "
               "envelopes, batches, request headers, signed rosters, node info, releases, "
               f"batch responses and {len(API_MODELS)} API body/query models; derandomized",
           result="only stable refusals (ProtocolError/FederationError codes, ValidationError); "
                  "no mutated envelope, roster or release accepted as something else",
           figures=dict(RUNS))
    assert sum(RUNS.values()) > 0
