"""The hot-path shortcuts give exactly the verdicts of the general code they stand in for:
the canonical-outer regex vs strict parsing, the outer template vs `canonical_bytes`, the
canonical-inner pattern (tail fields by regex, body by `canonical_object_or_none`) vs
`parse_canonical_relaxed` + `_check_inner`,
`parse_canonical`'s fast path vs `parse_json` + compare, `unb64u` (pydantic-core's decoder)
vs `binascii`, Python `unpad` vs `sodium_unpad`,
and the models built without validation vs `model_validate`."""

from __future__ import annotations

from typing import Any

import nacl.bindings
import nacl.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_SAFE_INT,
    Code,
    InnerMessage,
    MessageType,
    OuterEnvelope,
    ProtocolError,
    RosterRef,
    Signature,
    b64u,
    canonical_bytes,
    canonical_bytes_of_parsed,
    check_outer,
    new_ulid,
    pad,
    parse_canonical,
    parse_canonical_relaxed,
    parse_json,
    unpad,
    wire_json,
)
from protocol.canonical import canonical_object_or_none
from protocol.encoding import _unb64u_binascii, unb64u
from protocol.envelope_open import _check_inner, _match_canonical_inner, _parse_inner
from protocol.envelope_outer import _match_canonical, _unsigned_bytes
from tests.protocol.factories import (
    T0,
    Directory,
    KnownRoster,
    make_envelope,
    open_as,
)
from tests.protocol.test_canonical import json_values
from tests.protocol.test_envelope import A, _outer, _signed


def outcome(fn: Any, *args: Any, **kwargs: Any) -> object:
    try:
        return ("ok", fn(*args, **kwargs))
    except ProtocolError as exc:
        return ("refused", exc.code)


def reference_check_outer(raw: bytes) -> object:
    """check_outer on the general path only: strict parse first, then the mapping path."""
    try:
        obj = parse_json(raw)
    except ProtocolError as exc:
        return ("refused", exc.code)
    return outcome(check_outer, obj, keys=Directory.default(), roster=KnownRoster(), now_ms=T0)


ENVELOPE = make_envelope(msg_type=MessageType.ACTIVATION_OFFER)


def test_canonical_outer_takes_the_fast_path() -> None:
    matched = _match_canonical(ENVELOPE)
    assert matched is not None
    obj, unsigned = matched
    assert obj == parse_json(ENVELOPE)
    assert unsigned == canonical_bytes({k: v for k, v in obj.items() if k != "sig"})
    assert _match_canonical(ENVELOPE.replace(b'"v":1}', b'"v":1 }')) is None


def test_escaped_characters_in_ct_are_decoded_like_any_json_string() -> None:
    # Not canonical on the wire, but the same values: the outer signature (over canonical
    # bytes of the parsed values) still holds, on both paths.
    start = ENVELOPE.index(b'"ct":"') + 6
    escaped = ENVELOPE[:start] + b"\\u%04x" % ENVELOPE[start] + ENVELOPE[start + 1 :]
    assert _match_canonical(escaped) is None
    ok = outcome(check_outer, escaped, keys=Directory.default(), roster=None, now_ms=T0)
    assert ok[0] == "ok" and ok == reference_check_outer(escaped)
    assert open_as(escaped).outer == open_as(ENVELOPE).outer


def test_fast_and_general_outer_paths_agree_on_every_single_byte_mutation() -> None:
    keys, roster = Directory.default(), KnownRoster()
    for pos in range(len(ENVELOPE)):
        for delta in (1, 0x20):
            mutated = bytearray(ENVELOPE)
            mutated[pos] ^= delta
            raw = bytes(mutated)
            fast = outcome(check_outer, raw, keys=keys, roster=roster, now_ms=T0)
            assert fast == reference_check_outer(raw), (pos, delta)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, MAX_SAFE_INT + 10),
    st.integers(0, MAX_SAFE_INT + 10),
    st.integers(1, MAX_SAFE_INT + 10),
    st.integers(0, 2**60),
)
def test_fast_and_general_paths_agree_on_numbers(
    created: int, expires: int, version: int, key_version: int
) -> None:
    obj = parse_json(ENVELOPE)
    obj.update(created_ts=created, expires_ts=expires)
    obj["roster"]["version"] = version
    obj["sig"]["key_id"] = f"ed25519:{key_version}"
    raw = canonical_bytes_of_parsed(obj)
    fast = outcome(check_outer, raw, keys=Directory.default(), roster=None, now_ms=T0)
    assert fast == reference_check_outer(raw)


@settings(max_examples=200)
@given(
    st.integers(0, MAX_SAFE_INT),
    st.integers(0, MAX_SAFE_INT),
    st.integers(1, MAX_SAFE_INT),
    st.binary(min_size=0, max_size=300),
    st.from_regex(r"[a-z0-9][a-z0-9-]{2,62}", fullmatch=True),
)
def test_outer_template_is_the_canonical_encoding(
    created: int, expires: int, version: int, ct: bytes, node: str
) -> None:
    obj = {
        "v": 1,
        "msg_id": new_ulid(created % 2**48, bytes(10)),
        "from": node,
        "to": node,
        "created_ts": created,
        "expires_ts": expires,
        "roster": {"version": version, "sha256": b64u(bytes(32))},
        "ct": b64u(ct),
        "ct_sha256": b64u(bytes(32)),
    }
    assert _unsigned_bytes(obj) == canonical_bytes(obj)


@settings(max_examples=300)
@given(json_values)
def test_parse_canonical_fast_path_on_canonical_input(value: Any) -> None:
    assert parse_canonical(canonical_bytes(value)) == value


def reference_parse_canonical(data: bytes) -> Any:
    value = parse_json(data)
    if canonical_bytes_of_parsed(value) != data:
        raise ProtocolError(Code.NOT_CANONICAL, "")
    return value


@settings(max_examples=400)
@given(json_values, st.data())
def test_parse_canonical_agrees_with_reference_on_edits(value: Any, data: st.DataObject) -> None:
    raw = bytearray(canonical_bytes(value))
    pos = data.draw(st.integers(0, len(raw)))
    insert = data.draw(
        st.sampled_from(
            [b"", b" ", b"1.5", b"9007199254740992", b'"\xc3\xa9":1,', b'"a":1,', b"\\u00e9", b"-0"]
        )
    )
    raw[pos:pos] = insert
    assert outcome(parse_canonical, bytes(raw)) == outcome(reference_parse_canonical, bytes(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":1}',
        b'{"a":9007199254740992}',
        b"[-9007199254740992]",
        b'{"\xc3\xa9":1}',
        b"[" * 40 + b"]" * 40,
        b'"\\ud800"',
        b"1.5",
    ],
)
def test_parse_canonical_refuses_what_parse_json_refuses(raw: bytes) -> None:
    assert outcome(parse_canonical, raw) == ("refused", Code.MALFORMED)


@settings(max_examples=500)
@given(st.binary(max_size=40), st.integers(0, 3), st.integers(0, 520), st.binary(max_size=3))
def test_unpad_matches_sodium_unpad(data: bytes, blocks: int, cut: int, noise: bytes) -> None:
    candidates = [pad(data), pad(data)[:-1] + b"\x01", pad(data) + bytes(512 * blocks)]
    candidates.append((data + noise + bytes(1024))[: 512 * (1 + blocks % 2)])
    candidates.append(bytes(512) if not cut else pad(data)[:cut] + bytes(512 - cut % 512))
    for candidate in candidates:
        try:
            expected: object = nacl.bindings.sodium_unpad(candidate, 512)
            if len(candidate) % 512:
                expected = Code.BAD_PADDING  # we also demand whole blocks
        except (nacl.exceptions.CryptoError, ValueError):
            expected = Code.BAD_PADDING
        got = outcome(unpad, candidate)
        assert got == (("ok", expected) if isinstance(expected, bytes) else ("refused", expected))


def test_models_built_without_validation_equal_validated_ones() -> None:
    for model in (OuterEnvelope, InnerMessage, RosterRef, Signature):
        assert model.__new__ is object.__new__  # `_trusted` calls object.__new__ directly
    for msg_type in MessageType:
        dst = (
            "hub-east"
            if msg_type.value in ("activation_status", "aggregate_release")
            else "agency-b"
        )
        opened = open_as(make_envelope("agency-a", dst, msg_type), dst)
        assert OuterEnvelope.model_validate(wire_json(opened.outer)) == opened.outer
        assert InnerMessage.model_validate(parse_json(opened.inner_bytes)) == opened.inner
        assert wire_json(opened.inner) == parse_json(opened.inner_bytes)


@settings(max_examples=300)
@given(json_values, st.data())
def test_parse_canonical_relaxed_only_relaxes_three_rules(value: Any, data: st.DataObject) -> None:
    raw = bytearray(canonical_bytes(value))
    pos = data.draw(st.integers(0, len(raw)))
    raw[pos:pos] = data.draw(
        st.sampled_from([b"", b" ", b"1.5", b"9007199254740992", b'"\xc3\xa9":1,', b"-0", b"NaN"])
    )
    strict = outcome(parse_canonical, bytes(raw))
    relaxed = outcome(parse_canonical_relaxed, bytes(raw))
    if strict[0] == "ok" or relaxed[0] == "refused":
        assert relaxed == strict
    else:  # relaxed accepted what strict refused: only for the three relaxed rules
        assert strict == ("refused", Code.MALFORMED)
        assert canonical_bytes_of_parsed(relaxed[1]) == bytes(raw)


def test_what_the_relaxed_inner_parse_lets_through_is_refused_later() -> None:
    base = parse_json(make_envelope_inner())
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    cases = [
        (dict(base, body={"stage": "on_scene", "n": 2**60}), Code.BAD_BODY),
        (dict(base, body={"stage": "on_scene", "é": 1}), Code.BAD_BODY),
        (dict(base, body={"stage": deep}), Code.BAD_BODY),
        (dict(base, created_ts=2**60), Code.MALFORMED),
        (dict(base, **{"é": 1}), Code.MALFORMED),
    ]
    for inner, code in cases:
        inner_bytes = canonical_bytes_of_parsed(inner)
        with pytest.raises(ProtocolError) as err:
            open_as(_outer(A, "agency-b", _signed(A, inner_bytes)))
        assert err.value.code is code, inner


def make_envelope_inner() -> bytes:
    return open_as(make_envelope()).inner_bytes


# --- the inner message: tail pattern + canonical body vs relaxed parse + field checks ------


def reference_parse_inner(data: bytes) -> Any:
    obj = parse_canonical_relaxed(data)
    _check_inner(obj)
    return obj


def inner_samples() -> list[bytes]:
    out = []
    for msg_type in MessageType:
        dst = (
            "hub-east"
            if msg_type.value in ("activation_status", "aggregate_release")
            else "agency-b"
        )
        out.append(open_as(make_envelope("agency-a", dst, msg_type), dst).inner_bytes)
    return out


INNERS = inner_samples()


def test_every_canonical_inner_takes_the_fast_path() -> None:
    for inner in INNERS:
        assert _match_canonical_inner(inner) == parse_json(inner)
        assert _parse_inner(inner) == reference_parse_inner(inner)


def test_fast_and_general_inner_paths_agree_on_every_single_byte_mutation() -> None:
    for inner in INNERS[:3] + INNERS[-2:]:
        for pos in range(len(inner)):
            for delta in (1, 0x20, 0x80):
                mutated = bytearray(inner)
                mutated[pos] ^= delta
                raw = bytes(mutated)
                fast = _match_canonical_inner(raw)
                if fast is not None:  # the fast path accepts only what the general one does
                    assert fast == reference_parse_inner(raw), (pos, delta)
                assert outcome(_parse_inner, raw) == outcome(reference_parse_inner, raw)


_INNER_EDITS = [
    b"",
    b" ",
    b"\n",
    b"1.5",
    b"-0",
    b"NaN",
    b"9007199254740992",
    b'"a":1,',
    b'"body":{},',
    b'"v":1,',
    b',"created_ts":1',
    b'"created_ts":1,',
    b',"created_ts":1,"expires_ts":2,"from":"aaa","in_reply_to":null,"msg_id":"'
    + b"0" * 26
    + b'","roster_version":1,"thread_id":null,"to":"aaa","type":"ack","v":1}',
    b"\\u0041",
    b"\\ud800",
    b'"\xc3\xa9":1,',
    b"\xff",
    b"}",
    b"{",
]


@settings(max_examples=500)
@given(st.sampled_from(range(len(INNERS))), st.data())
def test_fast_and_general_inner_paths_agree_on_edits(which: int, data: st.DataObject) -> None:
    raw = bytearray(INNERS[which])
    for _ in range(data.draw(st.integers(1, 2))):
        pos = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 2))
        raw[pos : pos + cut] = data.draw(st.sampled_from(_INNER_EDITS))
    fast = _match_canonical_inner(bytes(raw))
    if fast is not None:
        assert fast == reference_parse_inner(bytes(raw))
    assert outcome(_parse_inner, bytes(raw)) == outcome(reference_parse_inner, bytes(raw))


ulids = st.from_regex(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", fullmatch=True)
node_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{2,62}", fullmatch=True)


@settings(max_examples=300)
@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    st.integers(0, MAX_SAFE_INT + 2) | st.sampled_from([-1, 2**60]),
    st.integers(-1, MAX_SAFE_INT + 2),
    st.none() | ulids,
    st.none() | ulids,
    node_ids,
    st.sampled_from(["ack", "activation_update", "nope", "Ack", "a" * 33, ""]),
)
def test_fast_and_general_inner_paths_agree_on_values(
    body: dict[str, Any],
    created: int,
    version: int,
    thread: str | None,
    reply: str | None,
    node: str,
    msg_type: str,
) -> None:
    inner = {
        "v": 1,
        "type": msg_type,
        "msg_id": new_ulid(T0, bytes(10)),
        "from": node,
        "to": "agency-b",
        "created_ts": created,
        "expires_ts": created + 1,
        "thread_id": thread,
        "in_reply_to": reply,
        "roster_version": version,
        "body": body,
    }
    try:
        raw = canonical_bytes_of_parsed(inner)
    except ProtocolError:  # lone surrogates in generated text have no canonical form
        return
    fast = _match_canonical_inner(raw)
    if fast is not None:
        assert fast == reference_parse_inner(raw) == inner
    assert outcome(_parse_inner, raw) == outcome(reference_parse_inner, raw)


@settings(max_examples=250)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5), st.data())
def test_canonical_object_or_none_accepts_only_canonical_objects(
    value: dict[str, Any], data: st.DataObject
) -> None:
    try:
        text = canonical_bytes_of_parsed(value).decode("utf-8")
    except (ProtocolError, UnicodeDecodeError):
        return
    assert canonical_object_or_none(text) == value
    pos = data.draw(st.integers(0, len(text)))
    text = text[:pos] + data.draw(st.sampled_from(_TEXT_EDITS)) + text[pos:]
    got = canonical_object_or_none(text)
    if got is not None:  # accepted: exactly what the strict relaxed parse accepts
        assert type(got) is dict
        assert parse_canonical_relaxed(text.encode("utf-8")) == got
        assert canonical_bytes_of_parsed(got) == text.encode("utf-8")


_TEXT_EDITS = ["", " ", "1.5", "-0", '"a":1,', '"\\u0041"', "\\ud800", "é", "}", "[1]", "NaN"]


# --- base64url: pydantic-core's decoder behind unb64u's checks vs binascii -----------------


def reference_unb64u(text: str) -> object:
    if "=" in text or "+" in text or "/" in text or "\\" in text or '"' in text:
        return ("refused", Code.MALFORMED)
    return outcome(_unb64u_binascii, text)


_B64_CHARS = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    "+/= \t\n\r\x00\x0b\x0c\x7f\\\"'.,:*%$é\u2028\U0001f600"
)


def test_unb64u_matches_binascii_on_every_short_string() -> None:
    for a in _B64_CHARS:
        assert outcome(unb64u, a) == reference_unb64u(a), a
        for b in _B64_CHARS:
            text = a + b
            assert outcome(unb64u, text) == reference_unb64u(text), text
            for c in "AQgw_-+=\\ ":
                assert outcome(unb64u, text + c) == reference_unb64u(text + c), text + c


@settings(max_examples=500)
@given(st.text(st.sampled_from(_B64_CHARS), max_size=12) | st.text(max_size=12))
def test_unb64u_matches_binascii_on_text(text: str) -> None:
    assert outcome(unb64u, text) == reference_unb64u(text)


@settings(max_examples=500)
@given(st.binary(max_size=200), st.data())
def test_unb64u_matches_binascii_on_edited_encodings(data: bytes, draw: st.DataObject) -> None:
    text = b64u(data)
    assert unb64u(text) == data
    pos = draw.draw(st.integers(0, len(text)))
    cut = draw.draw(st.integers(0, 2))
    text = (
        text[:pos] + draw.draw(st.text(st.sampled_from(_B64_CHARS), max_size=3)) + text[pos + cut :]
    )
    assert outcome(unb64u, text) == reference_unb64u(text)
