"""Canonical JSON and the strict parser, including Hypothesis round trips and garbage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    MAX_SAFE_INT,
    Code,
    ProtocolError,
    canonical_bytes,
    parse_canonical,
    parse_json,
)

ascii_keys = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ascii_keys, children, max_size=5)
    ),
    max_leaves=25,
)


@given(json_values)
def test_encode_decode_encode_is_stable(value: Any) -> None:
    encoded = canonical_bytes(value)
    decoded = parse_json(encoded)
    assert decoded == value
    assert canonical_bytes(decoded) == encoded
    assert parse_canonical(encoded) == value


@given(json_values)
def test_any_whitespace_form_parses_to_the_same_canonical_bytes(value: Any) -> None:
    pretty = json.dumps(value, indent=3, ensure_ascii=True).encode()
    assert canonical_bytes(parse_json(pretty)) == canonical_bytes(value)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_garbage_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    try:
        parse_json(data)
    except ProtocolError as exc:
        assert exc.code is Code.MALFORMED


@settings(max_examples=300)
@given(json_values, st.data())
def test_mutated_json_only_ever_raises_protocol_error(value: Any, data: st.DataObject) -> None:
    raw = bytearray(canonical_bytes(value))
    pos = data.draw(st.integers(0, len(raw)))
    raw[pos:pos] = data.draw(st.sampled_from([b"1.5", b"e9", b"NaN", b'"', b"\\", b"\xff", b","]))
    try:
        result = parse_json(bytes(raw))
    except ProtocolError:
        return
    canonical_bytes(result)  # whatever parses has a canonical form


def test_key_order_separators_and_utf8() -> None:
    value = {"b": [1, True, None], "a": {"y": "é\u2028\x7f", "x": "\n\x01"}, "A": -1}
    assert canonical_bytes(value) == (
        '{"A":-1,"a":{"x":"\\n\\u0001","y":"é\u2028\x7f"},"b":[1,true,null]}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        float("nan"),
        2**53,
        -(2**53),
        {"é": 1},
        {1: "int key"},
        b"bytes",
        {"a": {1, 2}},
        "\ud800",
        object(),
    ],
    # The same ids in every process (xdist workers compare them): no object address.
    ids=lambda v: "object()" if type(v) is object else repr(v),
)
def test_canonical_bytes_refuses_non_canonical_types(value: Any) -> None:
    with pytest.raises(ProtocolError) as err:
        canonical_bytes(value)
    assert err.value.code is Code.MALFORMED


def test_canonical_bytes_refuses_deep_nesting() -> None:
    value: Any = []
    for _ in range(40):
        value = [value]
    with pytest.raises(ProtocolError):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "raw",
    [
        b"1.0",
        b"1e5",
        b"1E5",
        b"-0.0",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'{"a":1,"a":1}',
        b'{"\xc3\xa9":1}',
        b'{"\\u00e9":1}',
        b"9007199254740992",
        b"-9007199254740992",
        b"123456789012345678901234567890",
        b"\xff",
        b'"\xed\xa0\x80"',  # UTF-8 encoded surrogate
        b'"\\udc00"',
        b'["\\ud800x"]',
        b"{} x",
        b"[1,]",
        b"",
        b"\xef\xbb\xbf1",
        b"[" * 50 + b"]" * 50,
        b"[01]",
        b"'a'",
    ],
)
def test_parser_refusals(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_json(raw)
    assert err.value.code is Code.MALFORMED


def test_parser_accepts_limits_and_surrogate_pairs() -> None:
    assert parse_json(b"[9007199254740991,-9007199254740991]") == [MAX_SAFE_INT, -MAX_SAFE_INT]
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert parse_json(bytearray(b"{}")) == {}


def test_parser_refuses_non_bytes() -> None:
    with pytest.raises(ProtocolError):
        parse_json("{}")  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [b'{"b":1,"a":2}', b"[1, 2]", b'"\\u00e9"', b" 1", b"-0"])
def test_parse_canonical_refuses_other_forms(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_canonical(raw)
    assert err.value.code is Code.NOT_CANONICAL
