"""Signature contexts, per-hop request signatures and signed releases."""

from __future__ import annotations

import itertools
from typing import Any

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    HTTP_STATUS,
    SKEW_MS,
    Code,
    Context,
    MessageType,
    ProtocolError,
    b64u,
    canonical_bytes,
    parse_authorization,
    sign,
    sign_release,
    sign_request,
    signing_input,
    verify,
    verify_release,
    verify_request,
    wire_json,
)
from tests.protocol.factories import T0, Directory, sample_bodies
from tests.vectors.generate import signing_key

KEY = signing_key("agency-a")
VK = bytes(KEY.verify_key)


def refused(code: Code, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ProtocolError) as err:
        fn(*args, **kwargs)
    assert err.value.code is code, err.value


# --- errors -------------------------------------------------------------------------------


def test_every_code_has_an_http_status_and_a_stable_value() -> None:
    assert set(HTTP_STATUS) == set(Code)
    assert len(Code) == 28  # 22 of DESIGN section 4 + 3 of shared aggregation (WIRE 14)
    # + 3 interstate (WIRE 16)
    assert Code.BATCH_TOO_LARGE == "batch_too_large" and HTTP_STATUS[Code.BATCH_TOO_LARGE] == 413
    err = ProtocolError(Code.EXPIRED, "late")
    assert (err.code, err.detail, str(err)) == (Code.EXPIRED, "late", "expired: late")


# --- signing ------------------------------------------------------------------------------


def test_signing_input_layout() -> None:
    assert signing_input(Context.OUTER, b"{}") == b"peernet/v1/outer\x00{}"


@pytest.mark.parametrize(("made", "checked"), list(itertools.permutations(Context, 2)), ids=str)
def test_a_signature_in_one_context_does_not_verify_in_another(
    made: Context, checked: Context
) -> None:
    data = canonical_bytes({"a": 1})
    signature = sign(KEY, made, data)
    verify(VK, made, data, signature)
    refused(Code.BAD_SIGNATURE, verify, VK, checked, data, signature)


def test_verify_refusals_use_the_given_code() -> None:
    data = b"{}"
    signature = sign(KEY, Context.INNER, data)
    for args in (
        (VK, Context.INNER, b"{ }", signature),
        (VK[:31], Context.INNER, data, signature),
        (VK, Context.INNER, data, signature[:63]),
        (bytes(signing_key("agency-b").verify_key), Context.INNER, data, signature),
        (bytes(32), Context.INNER, data, signature),  # small-order key
    ):
        refused(Code.BAD_INNER_SIGNATURE, verify, *args, Code.BAD_INNER_SIGNATURE)
    refused(Code.MALFORMED, sign, KEY, "bogus", data)  # type: ignore[arg-type]
    refused(Code.MALFORMED, sign, VK, Context.INNER, data)  # type: ignore[arg-type]


# --- request signatures -------------------------------------------------------------------

BODY = b'{"envelopes":[]}'
PATH = "/fed/v1/send/txn-1"


def header(**changes: Any) -> str:
    args: dict[str, Any] = {
        "signing_key": KEY,
        "key_version": 1,
        "method": "PUT",
        "path": PATH,
        "origin": "agency-a",
        "destination": "hub-east",
        "ts": T0,
        "body": BODY,
    }
    args.update(changes)
    return sign_request(**args)


def check(value: str | None, **changes: Any) -> str:
    args: dict[str, Any] = {
        "method": "PUT",
        "path": PATH,
        "body": BODY,
        "me": "hub-east",
        "now_ms": T0,
        "keys": Directory.default(),
    }
    args.update(changes)
    return verify_request(value, **args)


def test_request_round_trip_and_header_shape() -> None:
    value = header()
    assert value.startswith('Peernet origin="agency-a", destination="hub-east", ts=')
    assert check(value) == "agency-a"
    assert check(value, path=PATH + "?since=5") == "agency-a"  # query string excluded
    assert check(header(path=PATH + "?a=b")) == "agency-a"
    assert check(header(body=b"", method="GET"), body=b"", method="GET") == "agency-a"


def test_request_header_parsing_is_lenient_on_layout_only() -> None:
    auth = parse_authorization(header())
    shuffled = (
        f'peernet  sig="{b64u(auth.sig)}" ,key_id="ed25519:1",ts="{auth.ts}", '
        f"destination=hub-east,origin=agency-a"
    )
    assert check(shuffled) == "agency-a"


@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"envelopes":[1]}'},
        {"path": "/fed/v1/send/txn-2"},
        {"method": "POST"},
        {"method": "put"},
        {"path": "fed/v1/send/txn-1"},
    ],
    ids=repr,
)
def test_request_signature_covers_method_path_and_body(change: dict[str, Any]) -> None:
    refused(Code.BAD_REQUEST_SIGNATURE, check, header(), **change)


def test_request_refusals() -> None:
    refused(Code.BAD_REQUEST_SIGNATURE, check, None)
    refused(Code.WRONG_RECIPIENT, check, header(destination="agency-b"))
    refused(Code.FROM_FUTURE, check, header(ts=T0 + SKEW_MS + 1))
    refused(Code.EXPIRED, check, header(ts=T0 - SKEW_MS - 1))
    assert check(header(ts=T0 + SKEW_MS)) == check(header(ts=T0 - SKEW_MS)) == "agency-a"
    refused(Code.UNKNOWN_SENDER, check, header(origin="agency-z"))
    refused(Code.UNKNOWN_KEY, check, header(key_version=4))
    other = signing_key("agency-b")
    refused(Code.BAD_REQUEST_SIGNATURE, check, header(signing_key=other))
    # A signature in another context does not work as a request signature.
    value = header()
    auth = parse_authorization(value)
    swapped = value.replace(b64u(auth.sig), b64u(sign(KEY, Context.OUTER, b"{}")))
    refused(Code.BAD_REQUEST_SIGNATURE, check, swapped)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "Peernet",
        'Peernet origin="agency-a"',
        header() + ', extra="1"',
        header() + ', origin="agency-a"',
        header().replace("ts=", "ts=0"),
        header().replace("ts=", "ts=-"),
        header().replace('key_id="ed25519:1"', 'key_id="ed25519:01"'),
        header().replace('origin="agency-a"', 'origin="Agency A"'),
        header()[:-3] + '"',
        header() + "x" * 2000,
        header().replace(", ", "; "),
        header().replace('sig="', 'sig="A'),
    ],
)
def test_garbled_headers(value: str) -> None:
    refused(Code.BAD_REQUEST_SIGNATURE, check, value)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_header_garbage_only_raises_bad_request_signature(value: str) -> None:
    refused(Code.BAD_REQUEST_SIGNATURE, check, "Peernet " + value)


def test_sign_request_refuses_bad_input() -> None:
    refused(Code.MALFORMED, header, origin="A")
    refused(Code.MALFORMED, header, ts=-1)
    refused(Code.MALFORMED, header, path="/a b")
    refused(Code.MALFORMED, header, body="str")


# --- releases -----------------------------------------------------------------------------

RELEASE_BODY = sample_bodies()[MessageType.AGGREGATE_RELEASE]


def test_release_sign_and_verify() -> None:
    verified = verify_release(RELEASE_BODY, keys=Directory.default(), at_ms=T0, sender="agency-a")
    assert wire_json(verified) == RELEASE_BODY
    again = sign_release(verified.release, signing_key=KEY, key_version=1)
    assert wire_json(again) == RELEASE_BODY  # Ed25519 is deterministic


def test_release_refusals() -> None:
    keys = Directory.default()
    tampered = {
        "release": dict(RELEASE_BODY["release"], cells={"2025-12|fire|one_on_one|self": 8}),
        "sig": RELEASE_BODY["sig"],
    }
    refused(Code.BAD_SIGNATURE, verify_release, tampered, keys=keys, at_ms=T0)
    refused(
        Code.SENDER_MISMATCH, verify_release, RELEASE_BODY, keys=keys, at_ms=T0, sender="agency-b"
    )
    refused(Code.BAD_BODY, verify_release, {"release": {}}, keys=keys, at_ms=T0)
    refused(Code.BAD_BODY, verify_release, [], keys=keys, at_ms=T0)
    float_cells = {
        "release": dict(RELEASE_BODY["release"], scale=2.5),
        "sig": RELEASE_BODY["sig"],
    }
    refused(Code.BAD_BODY, verify_release, float_cells, keys=keys, at_ms=T0)
    # A correctly signed release that fails its model is still refused.
    bad = dict(RELEASE_BODY["release"], measure="zcdp", mechanism="laplace")
    sig = sign(KEY, Context.RELEASE, canonical_bytes(bad))
    body = {"release": bad, "sig": {"key_id": "ed25519:1", "value": b64u(sig)}}
    refused(Code.BAD_BODY, verify_release, body, keys=keys, at_ms=T0)
    refused(Code.BAD_BODY, sign_release, bad, signing_key=KEY, key_version=1)


def test_release_key_comes_from_the_resolver() -> None:
    keys = Directory.default()
    keys.revoked.add(("agency-a", "ed25519:1"))
    refused(Code.REVOKED_KEY, verify_release, RELEASE_BODY, keys=keys, at_ms=T0)
    keys = Directory.default()
    keys.keys["agency-a"]["ed25519:1"] = bytes(nacl.signing.SigningKey(bytes(32)).verify_key)
    refused(Code.BAD_SIGNATURE, verify_release, RELEASE_BODY, keys=keys, at_ms=T0)
