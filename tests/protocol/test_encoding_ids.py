"""base64url, decimals, node ids, ULIDs, key ids."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    Code,
    ProtocolError,
    b64u,
    check_msg_id,
    format_decimal,
    is_key_id,
    is_msg_id,
    is_node_id,
    key_id,
    key_version,
    new_ulid,
    parse_decimal,
    sha256_b64u,
    ulid_ms,
    unb64u,
)


@given(st.binary(max_size=200))
def test_b64u_round_trip(data: bytes) -> None:
    text = b64u(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert unb64u(text) == data
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")


@given(st.text(max_size=12))
def test_unb64u_accepts_only_canonical_text(text: str) -> None:
    try:
        data = unb64u(text)
    except ProtocolError as exc:
        assert exc.code is Code.MALFORMED
    else:
        assert b64u(data) == text


@pytest.mark.parametrize(
    "bad", ["Zg==", "Zg=", "Zh", "Zm9=", "Z", "Zm+v", "Zm/v", " Zm9v", "Zm9v\n", "Zé", "Zg\x00"]
)
def test_unb64u_refusals(bad: str) -> None:
    with pytest.raises(ProtocolError):
        unb64u(bad)


def test_unb64u_refuses_non_str() -> None:
    with pytest.raises(ProtocolError):
        unb64u(b"Zm9v")  # type: ignore[arg-type]


def test_sha256_b64u() -> None:
    assert sha256_b64u(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


@pytest.mark.parametrize(
    ("value", "wire"),
    [(2.5, "2.5"), (1e-05, "0.00001"), (0.0, "0"), (100, "100"), (Decimal("1.500"), "1.5")],
)
def test_format_decimal(value: float | int | Decimal, wire: str) -> None:
    assert format_decimal(value) == wire
    assert parse_decimal(wire) == Decimal(wire)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "abc", 1e40])
def test_format_decimal_refusals(bad: object) -> None:
    with pytest.raises(ProtocolError):
        format_decimal(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1e5", "-1", "01", ".5", "1.", " 1", "NaN"])
def test_parse_decimal_refusals(bad: str) -> None:
    with pytest.raises(ProtocolError):
        parse_decimal(bad)


@pytest.mark.parametrize("good", ["abc", "agency-a", "a" * 63, "0ab", "hub-east-2"])
def test_node_ids(good: str) -> None:
    assert is_node_id(good)


@pytest.mark.parametrize("bad", ["ab", "a" * 64, "-ab", "Agency", "agency_a", "abc\n", "é-ab", 3])
def test_bad_node_ids(bad: object) -> None:
    assert not is_node_id(bad)


@given(st.integers(0, 2**48 - 1), st.binary(min_size=10, max_size=10))
def test_ulid(ts: int, rand: bytes) -> None:
    value = new_ulid(ts, rand)
    assert is_msg_id(value) and len(value) == 26
    assert ulid_ms(value) == ts
    if ts < 2**48 - 1:  # ULIDs sort by time first
        assert new_ulid(ts + 1, bytes(10)) > value


def test_ulid_refusals() -> None:
    for ts, rand in ((-1, bytes(10)), (2**48, bytes(10)), (0, bytes(9)), (True, bytes(10))):
        with pytest.raises(ProtocolError):
            new_ulid(ts, rand)  # type: ignore[arg-type]
    for bad in ["8" + "0" * 25, "0" * 25, "0" * 25 + "I", "0" * 25 + "a", "0" * 26 + "\n"]:
        with pytest.raises(ProtocolError):
            check_msg_id(bad)


def test_key_ids() -> None:
    assert key_id(0) == "ed25519:0"
    assert key_version("ed25519:17") == 17
    assert is_key_id("ed25519:9007199254740991")
    for bad in ["ed25519:01", "ed25519:", "ed25519:-1", "Ed25519:1", "ed25519:9007199254740992"]:
        assert not is_key_id(bad)
        with pytest.raises(ProtocolError):
            key_version(bad)
    for bad_version in (-1, 2**53, True):
        with pytest.raises(ProtocolError):
            key_id(bad_version)
