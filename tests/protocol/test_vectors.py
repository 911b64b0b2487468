"""Golden vectors: every deterministic byte is recomputed from its inputs, every sealed
envelope opens, every refusal vector is refused with its code, and the generator reproduces
the committed files exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.public
import nacl.signing
import pytest

from protocol import (
    Code,
    Context,
    MessageType,
    ProtocolError,
    RosterRef,
    b64u,
    canonical_bytes,
    format_decimal,
    new_ulid,
    open_envelope,
    pad,
    parse_canonical,
    parse_json,
    sha256_b64u,
    sign,
    signing_input,
    unb64u,
    unpad,
    verify,
    verify_release,
    verify_request,
)
from tests.protocol.factories import Directory, KnownRoster
from tests.vectors import generate

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


KEYS = load("keys.json")
IDENTITIES = {ident["node_id"]: ident for ident in KEYS["identities"]}


def vector_directory() -> Directory:
    d = Directory()
    for ident in KEYS["identities"]:
        for key in ident["sign_keys"]:
            d.keys.setdefault(ident["node_id"], {})[key["key_id"]] = unb64u(key["public"])
            if key["revoked"]:
                d.revoked.add((ident["node_id"], key["key_id"]))
    return d


def vector_roster() -> KnownRoster:
    return KnownRoster(KEYS["roster"]["version"], KEYS["roster"]["sha256"])


def enc_secret(node: str) -> nacl.public.PrivateKey:
    return nacl.public.PrivateKey(unb64u(IDENTITIES[node]["enc_secret"]))


def test_generator_reproduces_committed_files() -> None:
    for name, content in generate.build().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == generate.render(content), name


def test_keys_derive_from_seeds() -> None:
    for ident in KEYS["identities"]:
        for key in ident["sign_keys"]:
            sk = nacl.signing.SigningKey(unb64u(key["sign_seed"]))
            assert b64u(bytes(sk.verify_key)) == key["public"]
        enc = enc_secret(ident["node_id"])
        assert b64u(bytes(enc.public_key)) == ident["enc_public"]
    roster = KEYS["roster"]
    assert sha256_b64u(canonical_bytes(KEYS["roster_object"])) == roster["sha256"]


def test_encoding_vectors() -> None:
    enc = load("encoding.json")
    for case in enc["b64u"]:
        assert b64u(bytes.fromhex(case["hex"])) == case["b64u"]
        assert unb64u(case["b64u"]) == bytes.fromhex(case["hex"])
    for bad in enc["b64u_invalid"]:
        with pytest.raises(ProtocolError) as err:
            unb64u(bad)
        assert err.value.code is Code.MALFORMED
    for case in enc["sha256_b64u"]:
        assert sha256_b64u(case["utf8"].encode()) == case["sha256_b64u"]
    for case in enc["ulid"]:
        assert new_ulid(case["ts_ms"], bytes.fromhex(case["rand_hex"])) == case["ulid"]
    for case in enc["decimal"]:
        assert format_decimal(float(case["value"])) == case["wire"]


def test_canonical_vectors() -> None:
    canon = load("canonical.json")
    for case in canon["valid"]:
        raw = unb64u(case["input_b64u"])
        expected = case["canonical"].encode()
        assert canonical_bytes(parse_json(raw)) == expected
        assert parse_canonical(expected) == parse_json(raw)
    for case in canon["invalid"]:
        with pytest.raises(ProtocolError) as err:
            parse_json(unb64u(case["input_b64u"]))
        assert err.value.code.value == case["code"], case["why"]
    for raw in canon["not_canonical"]:
        with pytest.raises(ProtocolError) as err:
            parse_canonical(unb64u(raw))
        assert err.value.code is Code.NOT_CANONICAL


def test_signature_vectors() -> None:
    sigs = load("signatures.json")
    # the five original contexts; later ones have their vectors in their own files
    # (`compact` in compact.json, tests/interstate)
    assert {c["context"] for c in sigs["cases"]} == {"inner", "outer", "roster", "release",
                                                     "request"}
    for case in sigs["cases"]:
        seed = unb64u(IDENTITIES[case["signer"]]["sign_keys"][0]["sign_seed"])
        key = nacl.signing.SigningKey(seed)
        data = case["data_utf8"].encode()
        context = Context(case["context"])
        expected_input = b"peernet/v1/" + context.value.encode() + b"\0" + data
        assert unb64u(case["signing_input_b64u"]) == expected_input == signing_input(context, data)
        # Ed25519 is deterministic: the signature is reproduced byte for byte.
        assert b64u(sign(key, context, data)) == case["signature"]
        assert b64u(key.sign(expected_input).signature) == case["signature"]
        verify(bytes(key.verify_key), context, data, unb64u(case["signature"]))
        for other in Context:
            if other is not context:
                with pytest.raises(ProtocolError):
                    verify(bytes(key.verify_key), other, data, unb64u(case["signature"]))


def test_padding_vectors() -> None:
    padding = load("padding.json")
    for case in padding["cases"]:
        data, padded = unb64u(case["input_b64u"]), unb64u(case["padded_b64u"])
        assert pad(data) == padded
        assert len(padded) % padding["block"] == 0 and len(padded) > len(data)
        assert padded == data + b"\x80" + bytes(len(padded) - len(data) - 1)
        assert unpad(padded) == data


ENVELOPES = load("envelopes.json")["cases"]


def test_every_message_type_has_an_envelope_vector() -> None:
    assert {case["type"] for case in ENVELOPES} == {t.value for t in MessageType}


@pytest.mark.parametrize("case", ENVELOPES, ids=[c["name"] for c in ENVELOPES])
def test_envelope_vector_reproduces_and_opens(case: dict[str, Any]) -> None:
    src = IDENTITIES[case["from"]]
    sk = nacl.signing.SigningKey(unb64u(src["sign_keys"][0]["sign_seed"]))
    inner_expected = {
        "v": 1,
        "type": case["type"],
        "msg_id": case["msg_id"],
        "from": case["from"],
        "to": case["to"],
        "created_ts": case["created_ts"],
        "expires_ts": case["expires_ts"],
        "thread_id": case["thread_id"],
        "in_reply_to": case["in_reply_to"],
        "roster_version": case["roster"]["version"],
        "body": case["body"],
    }
    inner_bytes = canonical_bytes(inner_expected)
    assert inner_bytes == case["inner_text"].encode() == unb64u(case["inner_b64u"])
    inner_sig = sk.sign(b"peernet/v1/inner\0" + inner_bytes).signature
    assert b64u(inner_sig) == case["inner_sig"]

    # Sealed box with the published ephemeral seed, rebuilt from libsodium primitives.
    recipient_pk = unb64u(IDENTITIES[case["to"]]["enc_public"])
    padded = nacl.bindings.sodium_pad(inner_sig + inner_bytes, 512)
    assert len(padded) == case["padded_len"]
    epk, esk = nacl.bindings.crypto_box_seed_keypair(unb64u(case["ephemeral_seed"]))
    nonce = hashlib.blake2b(epk + recipient_pk, digest_size=24).digest()
    ct = epk + nacl.bindings.crypto_box(padded, nonce, recipient_pk, esk)
    assert b64u(ct) == case["ct"]
    assert sha256_b64u(ct) == case["ct_sha256"]
    enc = enc_secret(case["to"])
    assert nacl.bindings.crypto_box_seal_open(ct, recipient_pk, bytes(enc)) == padded

    outer_unsigned = {
        "v": 1,
        "msg_id": case["msg_id"],
        "from": case["from"],
        "to": case["to"],
        "created_ts": case["created_ts"],
        "expires_ts": case["expires_ts"],
        "roster": case["roster"],
        "ct": case["ct"],
        "ct_sha256": case["ct_sha256"],
    }
    unsigned_bytes = canonical_bytes(outer_unsigned)
    assert unsigned_bytes == case["outer_unsigned"].encode()
    outer_sig = sk.sign(b"peernet/v1/outer\0" + unsigned_bytes).signature
    assert case["outer_sig"] == {"key_id": "ed25519:1", "value": b64u(outer_sig)}
    envelope = canonical_bytes({**outer_unsigned, "sig": case["outer_sig"]})
    assert envelope == case["envelope"].encode()

    opened = open_envelope(
        envelope,
        me=case["open_as"],
        enc_key=enc,
        keys=vector_directory(),
        roster=vector_roster(),
        now_ms=case["open_at_ms"],
    )
    assert opened.inner_bytes == inner_bytes
    assert opened.inner.type.value == case["type"]
    assert opened.body_json == case["body"]


REFUSALS = load("refusals.json")["cases"]


@pytest.mark.parametrize("case", REFUSALS, ids=[c["name"] for c in REFUSALS])
def test_refusal_vector(case: dict[str, Any]) -> None:
    def attempt() -> None:
        open_envelope(
            case["envelope"].encode(),
            me=case["me"],
            enc_key=enc_secret(case["me"]),
            keys=vector_directory(),
            roster=vector_roster(),
            now_ms=case["now_ms"],
        )

    if case["code"] == "accepted":
        attempt()
        return
    with pytest.raises(ProtocolError) as err:
        attempt()
    assert err.value.code.value == case["code"]


def test_request_vectors() -> None:
    for case in load("requests.json")["cases"]:
        body = unb64u(case["body_b64u"])
        signed = {
            "method": case["method"],
            "path": case["path"].split("?", 1)[0],
            "origin": case["origin"],
            "destination": case["destination"],
            "ts": case["ts"],
            "body_sha256": sha256_b64u(body),
        }
        assert canonical_bytes(signed) == case["signed_canonical"].encode()
        sk = nacl.signing.SigningKey(
            unb64u(IDENTITIES[case["origin"]]["sign_keys"][0]["sign_seed"])
        )
        sig = sk.sign(b"peernet/v1/request\0" + canonical_bytes(signed)).signature
        expected = (
            f'Peernet origin="{case["origin"]}", destination="{case["destination"]}", '
            f'ts={case["ts"]}, key_id="ed25519:1", sig="{b64u(sig)}"'
        )
        assert case["authorization"] == expected
        origin = verify_request(
            case["authorization"],
            method=case["method"],
            path=case["path"],
            body=body,
            me=case["destination"],
            now_ms=case["ts"],
            keys=vector_directory(),
        )
        assert origin == case["origin"]


def test_release_vectors() -> None:
    for case in load("releases.json")["cases"]:
        body = case["body"]
        assert canonical_bytes(body["release"]) == case["release_canonical"].encode()
        sk = nacl.signing.SigningKey(
            unb64u(IDENTITIES[case["signer"]]["sign_keys"][0]["sign_seed"])
        )
        sig = sk.sign(b"peernet/v1/release\0" + case["release_canonical"].encode()).signature
        assert body["sig"] == {"key_id": "ed25519:1", "value": b64u(sig)}
        verified = verify_release(body, keys=vector_directory(), at_ms=generate.T0)
        assert verified.release.node_id == case["signer"]


def test_roster_ref_of_vectors() -> None:
    assert RosterRef(**KEYS["roster"]) == generate.ROSTER
