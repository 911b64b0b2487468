"""Golden vectors of the interstate layer (docs/WIRE.md section 16).

`compact.json`: the `compact` signature context on the shared sample data; two member
networks `tx` (board of three keys, threshold 2) and `hi` (two keys, threshold 2), hubs
`hub-tx` and `hub-hi`, every key from `generate._secret(...)`; version 1 lists both and is
signed by tx keys 1, 2 and hi keys 1, 2; version 2 names version 1's hash, removes `hi`
and is signed by tx keys 2, 3 alone. Each version records the `compact` value, its
canonical bytes (what signatures and `sha256` cover) and the whole document.

`interstate_envelopes.json`: `v: 2` envelopes from `tx/agency-a` to `hi/agency-b` (and the
reply), built with fixed ephemeral seeds, with their inner and outer bytes; the foreign
roster reference is the vector roster of `generate.ROSTER`. Plus refusal cases a receiver
`hi/agency-b` must refuse with the stated code. Ed25519 and the seeded sealing are
deterministic, so every byte is reproducible.
"""

from __future__ import annotations

from typing import Any

import nacl.signing

from protocol import Context, MessageType, b64u, canonical_bytes, sha256_b64u, sign
from protocol.canonical import parse_json
from protocol.envelope_interstate import (
    build_interstate_envelope,
    build_interstate_inner,
    seal_interstate_outer,
)
from protocol.signing import signing_input
from tests.vectors.generate import (
    DAY,
    ROSTER,
    T0,
    _secret,
    enc_key,
    sample_bodies,
    sender,
    signing_key,
    ulid,
)

__all__ = ["board_key", "build_compact", "build_envelopes"]

NETWORKS = {"tx": (3, 2), "hi": (2, 2)}


def board_key(network_id: str, i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(_secret(f"{network_id} board {i}"))


def _pub(key: nacl.signing.SigningKey) -> str:
    return b64u(bytes(key.verify_key))


def _member(network_id: str) -> dict[str, Any]:
    n, threshold = NETWORKS[network_id]
    hub = f"hub-{network_id}"
    return {
        "network_id": network_id,
        "name": {"tx": "Texas", "hi": "Hawaii"}[network_id],
        "board": {"keys": [_pub(board_key(network_id, i)) for i in range(1, n + 1)],
                  "threshold": threshold},
        "hub": {"hub_id": hub, "endpoint": f"https://{hub}.example.org",
                "keys": [{"kid": "ed25519:1", "sign": _pub(signing_key(hub)),
                          "enc": b64u(bytes(enc_key(hub).public_key))}]},
    }


def _signed(value: dict[str, Any], signers: dict[str, list[int]]) -> dict[str, Any]:
    cbytes = canonical_bytes(value)
    sigs = {nid: [{"key": _pub(board_key(nid, i)),
                   "sig": b64u(sign(board_key(nid, i), Context.COMPACT, cbytes))}
                  for i in idx] for nid, idx in signers.items()}
    return {
        "signed_by": signers,
        "compact": value,
        "compact_canonical": cbytes.decode("utf-8"),
        "sha256": sha256_b64u(cbytes),
        "signatures": sigs,
        "document": canonical_bytes({"compact": value, "signatures": sigs}).decode("utf-8"),
    }


def build_compact() -> dict[str, Any]:
    data = canonical_bytes({"hello": "peernet"})
    key = signing_key("agency-a")
    context_case = {
        "signer": "agency-a", "context": "compact", "data_utf8": data.decode(),
        "signing_input_b64u": b64u(signing_input(Context.COMPACT, data)),
        "signature": b64u(sign(key, Context.COMPACT, data)),
    }
    v1 = {"v": 1, "compact_id": "us-peer", "version": 1, "prev_sha256": None,
          "issued_ts": T0, "expires_ts": T0 + 365 * DAY,
          "networks": [_member("hi"), _member("tx")]}
    first = _signed(v1, {"hi": [1, 2], "tx": [1, 2]})
    v2 = {**v1, "version": 2, "prev_sha256": first["sha256"], "issued_ts": T0 + DAY,
          "expires_ts": T0 + 366 * DAY, "networks": [_member("tx")]}
    return {
        "about": "Interstate compact (WIRE section 16): signatures filed per member network, "
                 "Ed25519(board_sk, b'peernet/v1/compact\\0' + compact_canonical)",
        "signature_context": context_case,
        "boards": {nid: [{"index": i, "seed": b64u(bytes(board_key(nid, i))),
                          "public": _pub(board_key(nid, i))} for i in range(1, n + 1)]
                   for nid, (n, _t) in NETWORKS.items()},
        "versions": [first, _signed(v2, {"tx": [2, 3]})],
    }


def _case(name: str, msg_type: MessageType, n: int, src: str, dst: str,
          nets: tuple[str, str], thread: str | None, reply: str | None) -> dict[str, Any]:
    common: dict[str, Any] = {"msg_id": ulid(n), "created_ts": T0 + n * 1000,
                              "expires_ts": T0 + n * 1000 + DAY}
    seed = _secret(f"ephemeral interstate {name}")
    body = sample_bodies()[msg_type]
    kw: dict[str, Any] = {"sender": sender(src), "from_network": nets[0],
                          "to_network": nets[1], "to": dst, "msg_type": msg_type, "body": body,
                          "thread_id": thread, "in_reply_to": reply, **common}
    inner_bytes, inner_sig = build_interstate_inner(roster_version=ROSTER.version, **kw)
    envelope = build_interstate_envelope(
        recipient_enc_key=bytes(enc_key(dst).public_key), roster=ROSTER, ephemeral_seed=seed,
        **kw,
    )
    outer = parse_json(envelope)
    unsigned = {k: v for k, v in outer.items() if k != "sig"}
    return {
        "name": name, "type": msg_type.value, "from": f"{nets[0]}/{src}",
        "to": f"{nets[1]}/{dst}", **common,
        "roster": {"version": ROSTER.version, "sha256": ROSTER.sha256},
        "inner_text": inner_bytes.decode(), "inner_sig": b64u(inner_sig),
        "ephemeral_seed": b64u(seed), "outer_unsigned": canonical_bytes(unsigned).decode(),
        "envelope": envelope.decode(), "open_as": f"{nets[1]}/{dst}",
        "open_at_ms": T0 + n * 1000,
    }


def _refusals() -> list[dict[str, Any]]:
    n = 900
    common: dict[str, Any] = {"msg_id": ulid(n), "created_ts": T0 + n * 1000,
                              "expires_ts": T0 + n * 1000 + DAY}
    req = MessageType.ACTIVATION_REQUEST
    good = _case("refusal base", req, n, "agency-a", "agency-b", ("tx", "hi"), None, None)
    outer = parse_json(good["envelope"].encode())

    def resigned(**changes: Any) -> str:
        value = {k: v for k, v in outer.items() if k != "sig"} | changes
        sig = sign(signing_key("agency-a"), Context.OUTER, canonical_bytes(value))
        return canonical_bytes({**value, "sig": {"key_id": "ed25519:1",
                                                 "value": b64u(sig)}}).decode()

    def readdressed(**changes: Any) -> str:
        return canonical_bytes(outer | changes).decode()

    inner_bytes, inner_sig = build_interstate_inner(
        sender=sender("agency-a"), from_network="tx", to_network="ca", to="agency-b",
        msg_type=req, body=sample_bodies()[req], roster_version=1, **common)
    wrong_inner = seal_interstate_outer(
        sender=sender("agency-a"), from_network="tx", to_network="hi", to="agency-b",
        recipient_enc_key=bytes(enc_key("agency-b").public_key),
        sealed_plaintext=inner_sig + inner_bytes, roster=ROSTER,
        ephemeral_seed=_secret("ephemeral interstate inner ca"), **common).decode()
    return [
        {"name": "to_network changed on the way", "check": "relay", "code": "bad_signature",
         "envelope": readdressed(to_network="az")},
        {"name": "to_network never in the compact", "check": "relay", "code": "unknown_network",
         "envelope": resigned(to_network="ny")},
        {"name": "from_network changed on the way", "check": "open", "code": "unknown_network",
         "envelope": readdressed(from_network="ny")},
        {"name": "from_network equals to_network", "check": "open", "code": "malformed",
         "envelope": resigned(from_network="hi")},
        {"name": "v 1 with network fields", "check": "open", "code": "malformed",
         "envelope": resigned(v=1)},
        {"name": "sender network removed from the compact", "check": "open",
         "code": "network_not_in_compact",
         "envelope": resigned(from_network="ca")},
        {"name": "inner names another network", "check": "open", "code": "recipient_mismatch",
         "envelope": wrong_inner},
    ]


def build_envelopes() -> dict[str, Any]:
    req, offer = MessageType.ACTIVATION_REQUEST, MessageType.ACTIVATION_OFFER
    first = _case("activation_request tx to hi", req, 800, "agency-a", "agency-b",
                  ("tx", "hi"), None, None)
    reply = _case("activation_offer hi to tx", offer, 801, "agency-b", "agency-a",
                  ("hi", "tx"), ulid(800), ulid(800))
    return {
        "about": "Interstate envelopes v 2 (WIRE section 16). Receiver view for the refusals: "
                 "the compact lists tx, hi and az and listed ca in an earlier version (removed); "
                 "ny was never listed; every member's roster is the vector roster and its "
                 "nodes' keys are the vector identities. `check`: `relay` is the relaying "
                 "hub's check (no decryption), `open` is hi/agency-b opening it.",
        "cases": [first, reply],
        "refusals": _refusals(),
    }
