"""Generate the golden vectors of the peernet wire format (docs/WIRE.md).

    .venv/bin/python -m tests.vectors.generate        # rewrite tests/vectors/*.json
    .venv/bin/python -m tests.vectors.generate --check  # exit 1 if the files differ

Everything is derived from fixed labels, so every byte is reproducible:

- Ed25519 seeds and X25519 secret keys are SHA-256 of a label (`keys.json`); the X25519
  secret is used as the raw 32-byte scalar (libsodium `crypto_box` secret key);
- sealed boxes use an ephemeral key pair from `crypto_box_seed_keypair(ephemeral_seed)`;
  that is byte-for-byte what `crypto_box_seal` emits for that ephemeral key, so any
  libsodium `crypto_box_seal_open` opens them. Production code never passes a seed.

tests/protocol/test_vectors.py recomputes every deterministic byte independently and opens
every envelope; another implementation should do the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing

from protocol import (
    Code,
    Context,
    MessageType,
    RosterRef,
    Sender,
    b64u,
    build_envelope,
    build_inner,
    canonical_bytes,
    format_decimal,
    key_id,
    new_ulid,
    pad,
    parse_json,
    seal_outer,
    sha256_b64u,
    sign,
    sign_release,
    sign_request,
    signing_input,
    wire_json,
)
from protocol.audit_head import head_signing_input, sign_head_bytes
from tests.vectors.aggregate_vectors import AGGREGATE_TYPES as _AGGREGATE_TYPES
from tests.vectors.aggregate_vectors import bodies as _aggregate_bodies
from tests.vectors.aggregate_vectors import build as _aggregate_shares
from tests.vectors.transfer_vectors import TRANSFER_ROUTES, TRANSFER_TYPES, transfer_bodies

HERE = Path(__file__).resolve().parent

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
DAY = 24 * HOUR
NODES = ("agency-a", "agency-b", "agency-c", "hub-east")
ROSTER_OBJECT = {"note": "peernet vector roster", "version": 1}
ROSTER = RosterRef(version=1, sha256=sha256_b64u(canonical_bytes(ROSTER_OBJECT)))


def _secret(label: str) -> bytes:
    return hashlib.sha256(f"peernet/v1 vector {label}".encode()).digest()


def signing_key(node_id: str, version: int = 1) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(_secret(f"{node_id} sign {version}"))


def enc_key(node_id: str) -> nacl.public.PrivateKey:
    return nacl.public.PrivateKey(_secret(f"{node_id} enc"))


def sender(node_id: str, version: int = 1) -> Sender:
    return Sender(node_id=node_id, key_version=version, signing_key=signing_key(node_id, version))


def ulid(n: int) -> str:
    return new_ulid(T0 + n, hashlib.sha256(f"ulid {n}".encode()).digest()[:10])


def _release() -> dict[str, Any]:
    return {
        "release_id": ulid(900),
        "node_id": "agency-a",
        "month": "2025-12",
        "schema": "peernet.cells/1",
        "query_sha256": sha256_b64u(b"peernet.cells/1 query"),
        "measure": "zcdp",
        "mechanism": "gaussian",
        "scale": format_decimal(2.5),
        "budget_spent": format_decimal(0.041666),
        "bounds": {"per_person_month": 4, "per_cell": 1},
        "opendp_version": "0.16.0",
        "cells": {
            "2025-12|fire|one_on_one|self": 7,
            "2025-12|ems|defusing|post_critical_incident": -2,
            "2025-12|dispatch_911|debriefing|interagency": 0,
        },
    }


def sample_bodies() -> dict[MessageType, dict[str, Any]]:
    """One valid body per message type (plain JSON values)."""
    release = sign_release(_release(), signing_key=signing_key("agency-a"), key_version=1)
    return {
        MessageType.ACTIVATION_REQUEST: {
            "incident_ref": "2026-000123",
            "requesting_agency": "agency-a",
            "incident_type": "line_of_duty_death",
            "event_ts": T0 - 3 * HOUR,
            "affected": {"fire": 24, "dispatch_911": 3},
            "interventions": ["defusing", "debriefing"],
            "window_start_ts": T0 + HOUR,
            "window_end_ts": T0 + 3 * DAY,
            "peers_needed": 4,
            "reporting_location": "STA-7",
            "priority": "urgent",
            "contact": {"role": "coordinator", "phone": "+1 555 0100"},
            "approver": "chief",
            "expires_ts": T0 + 6 * HOUR,
        },
        MessageType.ACTIVATION_OFFER: {
            "peers": 3,
            "disciplines": {"fire": 2, "ems": 1},
            "eta_minutes": 90,
            "conditions": ["lodging_required"],
        },
        MessageType.ACTIVATION_ACCEPT: {"offer_msg_id": ulid(2)},
        MessageType.ACTIVATION_DECLINE: {"reason": "no_capacity"},
        MessageType.ACTIVATION_UPDATE: {"stage": "on_scene"},
        MessageType.ACTIVATION_CANCEL: {"reason": "resolved_locally"},
        MessageType.FOLLOWUP_HANDOFF: {
            "activation_id": ulid(1),
            "due": "2026-01-15",
            "contact_note": "Reach via the station coordinator line after 18:00.",
            "discipline": "fire",
        },
        MessageType.ACK: {"msg_id": ulid(1), "status": "accepted", "code": None},
        MessageType.ACTIVATION_STATUS: {
            "activation_id": ulid(1),
            "requester": "agency-a",
            "responder": "agency-b",
            "state": "offered",
            "counts": {"affected": 27, "peers_needed": 4, "peers_offered": 3},
            "incident_type": "line_of_duty_death",
            "ts": T0 + HOUR,
        },
        MessageType.AGGREGATE_RELEASE: wire_json(release),
        MessageType.ACTIVATION_STATUSES: {"statuses": [
            {"activation_id": ulid(1), "requester": "agency-a", "responder": "agency-b",
             "state": "offered", "counts": {"affected": 27, "peers_needed": 4,
                                            "peers_offered": 3},
             "incident_type": "line_of_duty_death", "ts": T0 + HOUR},
            {"activation_id": ulid(1), "requester": "agency-a", "responder": "agency-c",
             "state": "offered", "counts": {"affected": 27, "peers_needed": 4,
                                            "peers_offered": 1},
             "incident_type": "line_of_duty_death", "ts": T0 + HOUR + 1500},
        ]},
        MessageType.AUDIT_ANCHOR: _audit_anchor_body(),
        **_aggregate_bodies(),
        **transfer_bodies(),
    }


# The audit head a node signs and anchors at the hub (WIRE section 12).
_HEAD_NODE, _HEAD_SEQ, _HEAD_SIGNED_AT = "agency-a", 1234, T0 + 2 * HOUR
_HEAD_HASH = sha256_b64u(b"audit entry 1234")


def _audit_anchor_body() -> dict[str, Any]:
    sig = sign_head_bytes(signing_key(_HEAD_NODE), _HEAD_NODE, _HEAD_SEQ, _HEAD_HASH,
                          _HEAD_SIGNED_AT)
    return {"seq": _HEAD_SEQ, "hash": _HEAD_HASH, "signed_at": _HEAD_SIGNED_AT,
            "sig": {"key_id": "ed25519:1", "value": b64u(sig)}}


def _audit_anchor() -> dict[str, Any]:
    data = head_signing_input(_HEAD_NODE, _HEAD_SEQ, _HEAD_HASH, _HEAD_SIGNED_AT)
    return {"cases": [{"signer": _HEAD_NODE,
                       "head": {"node_id": _HEAD_NODE, "seq": _HEAD_SEQ, "hash": _HEAD_HASH,
                                "signed_at": _HEAD_SIGNED_AT},
                       "signing_input_b64u": b64u(data), "body": _audit_anchor_body()}]}


# Who sends which type to whom in the envelope vectors.
ROUTES: dict[MessageType, tuple[str, str]] = {
    MessageType.ACTIVATION_REQUEST: ("agency-a", "agency-b"),
    MessageType.ACTIVATION_OFFER: ("agency-b", "agency-a"),
    MessageType.ACTIVATION_ACCEPT: ("agency-a", "agency-b"),
    MessageType.ACTIVATION_DECLINE: ("agency-b", "agency-a"),
    MessageType.ACTIVATION_UPDATE: ("agency-b", "agency-a"),
    MessageType.ACTIVATION_CANCEL: ("agency-a", "agency-b"),
    MessageType.FOLLOWUP_HANDOFF: ("agency-b", "agency-a"),
    MessageType.ACK: ("agency-b", "agency-a"),
    MessageType.ACTIVATION_STATUS: ("agency-a", "hub-east"),
    MessageType.AGGREGATE_RELEASE: ("agency-a", "hub-east"),
    MessageType.ACTIVATION_STATUSES: ("agency-a", "hub-east"),
    MessageType.AUDIT_ANCHOR: ("agency-a", "hub-east"),
    # shared aggregation (WIRE section 14): agency-c plays the helper aggregator
    MessageType.AGGREGATE_SHARE: ("agency-a", "hub-east"),
    MessageType.AGGREGATE_ROUND: ("hub-east", "agency-c"),
    MessageType.AGGREGATE_RESULT: ("agency-c", "hub-east"),
    **TRANSFER_ROUTES,
}


def _keys() -> dict[str, Any]:
    identities = []
    for node in NODES:
        keys = [
            {
                "key_id": key_id(1),
                "sign_seed": b64u(_secret(f"{node} sign 1")),
                "public": b64u(bytes(signing_key(node).verify_key)),
                "revoked": False,
            }
        ]
        if node == "agency-a":  # an old, revoked key for the refusal vectors
            keys.append(
                {
                    "key_id": key_id(0),
                    "sign_seed": b64u(_secret(f"{node} sign 0")),
                    "public": b64u(bytes(signing_key(node, 0).verify_key)),
                    "revoked": True,
                }
            )
        identities.append(
            {
                "node_id": node,
                "sign_keys": keys,
                "enc_secret": b64u(_secret(f"{node} enc")),
                "enc_public": b64u(bytes(enc_key(node).public_key)),
            }
        )
    return {
        "about": "Ed25519 seeds and X25519 raw secret keys are SHA-256('peernet/v1 vector "
        "<node> sign <version>' / '... <node> enc'). Roster hash: SHA-256 of "
        "canonical(roster_object).",
        "identities": identities,
        "roster_object": ROSTER_OBJECT,
        "roster": {"version": ROSTER.version, "sha256": ROSTER.sha256},
    }


def _encoding() -> dict[str, Any]:
    b64_cases = [b"", b"f", b"fo", b"foo", b"foob", b"\xfb\xff\xbf", bytes(range(32))]
    return {
        "b64u": [{"hex": data.hex(), "b64u": b64u(data)} for data in b64_cases],
        "b64u_invalid": ["Zg==", "Zm9v=", "Zh", "Zm9=", "Z", "Zm+v", "Zm/v", "Zm9v\n", "Zm 9v"],
        "sha256_b64u": [
            {"utf8": text, "sha256_b64u": sha256_b64u(text.encode())} for text in ("", "peernet")
        ],
        "ulid": [
            {"ts_ms": ts, "rand_hex": rand.hex(), "ulid": new_ulid(ts, rand)}
            for ts, rand in (
                (0, bytes(10)),
                (T0, bytes(range(10))),
                (2**48 - 1, b"\xff" * 10),
            )
        ],
        "decimal": [
            {"value": repr(v), "wire": format_decimal(v)} for v in (2.5, 1e-05, 0.0, 100, 0.1)
        ],
    }


CANONICAL_VALID: list[bytes] = [
    b'{"b": 1, "a": [true, false, null], "c": {"z": "", "y": -0}}',
    b'"\\u00e9\\u2028\\u007f\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\/"',
    b'"\\ud83d\\ude00 \xf0\x9f\x98\x80"',
    b"[9007199254740991, -9007199254740991, 0]",
    b'{"A": 1, "_": 2, "a": 3, "": 4}',
    b" [ ] ",
]

CANONICAL_INVALID: list[tuple[bytes, str]] = [
    (b"1.0", "float"),
    (b"1e5", "exponent"),
    (b"NaN", "NaN"),
    (b"-Infinity", "Infinity"),
    (b'{"a":1,"a":2}', "duplicate key"),
    (b'{"\xc3\xa9":1}', "non-ASCII key"),
    (b"9007199254740992", "integer above 2^53-1"),
    (b"-9007199254740992", "integer below -(2^53-1)"),
    (b'"\xff"', "invalid UTF-8"),
    (b'"\\ud800"', "lone surrogate"),
    (b"{} {}", "trailing data"),
    (b"\xef\xbb\xbf{}", "byte order mark"),
    (b"[01]", "leading zero"),
    (b'"a\nb"', "raw control character in string"),
]

NOT_CANONICAL: list[bytes] = [b'{"b":1,"a":2}', b"[1, 2]", b'"\\u00e9"', b'"\\/"', b"-0"]


def _canonical() -> dict[str, Any]:
    return {
        "valid": [
            {"input_b64u": b64u(raw), "canonical": canonical_bytes(parse_json(raw)).decode()}
            for raw in CANONICAL_VALID
        ],
        "invalid": [
            {"input_b64u": b64u(raw), "why": why, "code": Code.MALFORMED.value}
            for raw, why in CANONICAL_INVALID
        ],
        "not_canonical": [b64u(raw) for raw in NOT_CANONICAL],
    }


def _signatures() -> dict[str, Any]:
    data = canonical_bytes({"hello": "peernet"})
    key = signing_key("agency-a")
    cases = []
    # The five original contexts: later ones get their vectors in their own files
    # (`compact` in compact.json), so this file keeps its bytes.
    original = (Context.INNER, Context.OUTER, Context.ROSTER, Context.RELEASE, Context.REQUEST)
    for context in original:
        cases.append(
            {
                "signer": "agency-a",
                "key_id": key_id(1),
                "context": context.value,
                "data_utf8": data.decode(),
                "signing_input_b64u": b64u(signing_input(context, data)),
                "signature": b64u(sign(key, context, data)),
            }
        )
    return {"about": "Ed25519(b'peernet/v1/' + context + b'\\0' + data)", "cases": cases}


def _padding() -> dict[str, Any]:
    cases = []
    for length in (0, 1, 511, 512, 1000):
        data = bytes(i % 251 for i in range(length))
        cases.append({"input_b64u": b64u(data), "padded_b64u": b64u(pad(data))})
    return {"block": 512, "cases": cases}


def _envelope_case(
    name: str, msg_type: MessageType, n: int, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    src, dst = ROUTES[msg_type]
    body = sample_bodies()[msg_type] if body is None else body
    msg_id = ulid(n)
    thread_id = None if msg_type is MessageType.ACTIVATION_REQUEST else ulid(1)
    in_reply_to = ulid(n - 1) if msg_type is not MessageType.ACTIVATION_REQUEST else None
    common: dict[str, Any] = {
        "msg_id": msg_id,
        "created_ts": T0 + n * 1000,
        "expires_ts": T0 + n * 1000 + DAY,
    }
    seed = _secret(f"ephemeral {name}")
    inner_bytes, inner_sig = build_inner(
        sender=sender(src),
        to=dst,
        msg_type=msg_type,
        body=body,
        roster_version=ROSTER.version,
        thread_id=thread_id,
        in_reply_to=in_reply_to,
        **common,
    )
    envelope = build_envelope(
        sender=sender(src),
        to=dst,
        recipient_enc_key=bytes(enc_key(dst).public_key),
        msg_type=msg_type,
        body=body,
        roster=ROSTER,
        thread_id=thread_id,
        in_reply_to=in_reply_to,
        ephemeral_seed=seed,
        **common,
    )
    outer = parse_json(envelope)
    unsigned = {k: v for k, v in outer.items() if k != "sig"}
    return {
        "name": name,
        "type": msg_type.value,
        "from": src,
        "to": dst,
        "thread_id": thread_id,
        "in_reply_to": in_reply_to,
        **common,
        "roster": {"version": ROSTER.version, "sha256": ROSTER.sha256},
        "body": body,
        "inner_text": inner_bytes.decode(),
        "inner_b64u": b64u(inner_bytes),
        "inner_sig": b64u(inner_sig),
        "padded_len": len(pad(inner_sig + inner_bytes)),
        "ephemeral_seed": b64u(seed),
        "ct": outer["ct"],
        "ct_sha256": outer["ct_sha256"],
        "outer_unsigned": canonical_bytes(unsigned).decode(),
        "outer_sig": outer["sig"],
        "envelope": envelope.decode(),
        "open_as": dst,
        "open_at_ms": T0 + n * 1000,
    }


def _envelopes() -> dict[str, Any]:
    # Types in the order of the first published vectors (their bytes depend on the index);
    # types added later get the indexes after the submit's status.
    later = (MessageType.ACTIVATION_STATUSES, MessageType.AUDIT_ANCHOR, *_AGGREGATE_TYPES,
             *TRANSFER_TYPES)
    first = [t for t in MessageType if t not in later]
    cases = [_envelope_case(msg_type.value, msg_type, 10 + i) for i, msg_type in enumerate(first)]
    # The submit's status: responder null, state requested, and the agencies asked.
    submit = {**sample_bodies()[MessageType.ACTIVATION_STATUS], "responder": None,
              "state": "requested", "counts": {"affected": 27, "peers_needed": 4,
                                               "peers_offered": 0},
              "responders": ["agency-b", "agency-c"]}
    cases.append(_envelope_case("activation_status_submit", MessageType.ACTIVATION_STATUS,
                                10 + len(first), submit))
    cases.append(_envelope_case(MessageType.ACTIVATION_STATUSES.value,
                                MessageType.ACTIVATION_STATUSES, 11 + len(first)))
    cases.append(_envelope_case(MessageType.AUDIT_ANCHOR.value, MessageType.AUDIT_ANCHOR,
                                12 + len(first)))
    for i, msg_type in enumerate(_AGGREGATE_TYPES):
        cases.append(_envelope_case(msg_type.value, msg_type, 13 + len(first) + i))
    after = 13 + len(first) + len(_AGGREGATE_TYPES)
    for i, msg_type in enumerate(TRANSFER_TYPES):  # issue 21, WIRE section 15
        cases.append(_envelope_case(msg_type.value, msg_type, after + i))
    return {"cases": cases}


def _wrap(
    src: Sender,
    *,
    to: str,
    plaintext: bytes,
    name: str,
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster: RosterRef = ROSTER,
    seal_to: str | None = None,
) -> bytes:
    return seal_outer(
        sender=src,
        to=to,
        recipient_enc_key=bytes(enc_key(seal_to or to).public_key),
        sealed_plaintext=plaintext,
        msg_id=msg_id,
        created_ts=created_ts,
        expires_ts=expires_ts,
        roster=roster,
        ephemeral_seed=_secret(f"ephemeral {name}"),
    )


def _resign_outer(envelope: bytes, src: Sender, **changes: Any) -> bytes:
    outer = parse_json(envelope)
    outer.pop("sig")
    outer.update(changes)
    signature = sign(src.signing_key, Context.OUTER, canonical_bytes(outer))
    outer["sig"] = {"key_id": src.key_id, "value": b64u(signature)}
    return canonical_bytes(outer)


def _refusals() -> dict[str, Any]:
    """Envelopes every implementation must refuse, with the code this one gives."""
    a, b, c = sender("agency-a"), sender("agency-b"), sender("agency-c")
    old = sender("agency-a", 0)
    created, expires = T0 + 100_000, T0 + 100_000 + DAY
    msg_id = ulid(100)

    def inner(src: Sender, to: str, **changes: Any) -> bytes:
        """`inner_sig || inner_bytes` of an activation_update, fields overridable."""
        fields: dict[str, Any] = {
            "msg_id": msg_id,
            "created_ts": created,
            "expires_ts": expires,
            "roster_version": 1,
        }
        fields.update(changes)
        inner_bytes, inner_sig = build_inner(
            sender=src,
            to=to,
            msg_type=MessageType.ACTIVATION_UPDATE,
            body={"stage": "mobilized"},
            thread_id=ulid(1),
            **fields,
        )
        return inner_sig + inner_bytes

    def raw_inner(src: Sender, inner_bytes: bytes) -> bytes:
        """Any bytes as inner, signed by `src`."""
        return sign(src.signing_key, Context.INNER, inner_bytes) + inner_bytes

    def env(plaintext: bytes, name: str, src: Sender = a, **kw: Any) -> bytes:
        return _wrap(
            src,
            to=kw.pop("to", "agency-b"),
            plaintext=plaintext,
            name=name,
            msg_id=msg_id,
            created_ts=created,
            expires_ts=expires,
            **kw,
        )

    good = env(inner(a, "agency-b"), "good")
    base = parse_json(inner(a, "agency-b")[64:])
    split_view = RosterRef(version=1, sha256=sha256_b64u(b"another roster"))
    cases: list[tuple[str, bytes, int, str]] = [
        ("valid control", good, created, "accepted"),
        ("created_ts more than 5 min ahead", good, created - 300_001, Code.FROM_FUTURE),
        ("more than 5 min past expires_ts", good, expires + 300_001, Code.EXPIRED),
        (
            "outer field changed after signing",
            canonical_bytes(dict(parse_json(good), created_ts=created + 1)),
            created,
            Code.BAD_SIGNATURE,
        ),
        (
            "ct_sha256 not the hash of ct",
            _resign_outer(good, a, ct_sha256=sha256_b64u(b"x")),
            created,
            Code.CT_HASH_MISMATCH,
        ),
        ("unknown outer field", _resign_outer(good, a, extra=1), created, Code.MALFORMED),
        ("v is 2", _resign_outer(good, a, v=2), created, Code.MALFORMED),
        (
            "addressed to agency-c",
            env(inner(a, "agency-c"), "to-c", to="agency-c"),
            created,
            Code.WRONG_RECIPIENT,
        ),
        (
            "unknown sender",
            _resign_outer(good, a, **{"from": "agency-z"}),
            created,
            Code.UNKNOWN_SENDER,
        ),
        (
            "unknown key id",
            _resign_outer(good, Sender("agency-a", 7, a.signing_key)),
            created,
            Code.UNKNOWN_KEY,
        ),
        ("revoked key", env(inner(old, "agency-b"), "revoked", src=old), created, Code.REVOKED_KEY),
        (
            "roster hash not the known one",
            env(inner(a, "agency-b"), "roster", roster=split_view),
            created,
            Code.ROSTER_MISMATCH,
        ),
        (
            "sealed to agency-c's key",
            env(inner(a, "agency-b"), "c-key", seal_to="agency-c"),
            created,
            Code.UNDECRYPTABLE,
        ),
        (
            "forwarded: agency-c re-seals agency-a's inner under its own outer",
            env(inner(a, "agency-c"), "forwarded", src=c),
            created,
            Code.BAD_INNER_SIGNATURE,
        ),
        (
            "agency-b's outer and inner signatures, inner.from agency-a",
            env(raw_inner(b, inner(a, "agency-b")[64:]), "sender-mismatch", src=b),
            created,
            Code.SENDER_MISMATCH,
        ),
        (
            "inner addressed to agency-c inside an envelope to agency-b",
            env(inner(a, "agency-c"), "recipient-mismatch"),
            created,
            Code.RECIPIENT_MISMATCH,
        ),
        (
            "inner msg_id differs",
            env(inner(a, "agency-b", msg_id=ulid(101)), "layer-id"),
            created,
            Code.LAYER_MISMATCH,
        ),
        (
            "inner created_ts differs",
            env(inner(a, "agency-b", created_ts=created - 1), "layer-ts"),
            created,
            Code.LAYER_MISMATCH,
        ),
        (
            "inner roster_version differs",
            env(inner(a, "agency-b", roster_version=2), "layer-roster"),
            created,
            Code.LAYER_MISMATCH,
        ),
        (
            "inner bytes with whitespace",
            env(raw_inner(a, json.dumps(base).encode()), "not-canonical"),
            created,
            Code.NOT_CANONICAL,
        ),
        (
            "unknown inner field",
            env(raw_inner(a, canonical_bytes(dict(base, extra=1))), "inner-extra"),
            created,
            Code.MALFORMED,
        ),
        (
            "unknown type",
            env(raw_inner(a, canonical_bytes(dict(base, type="gossip"))), "unknown-type"),
            created,
            Code.UNKNOWN_TYPE,
        ),
        (
            "body value outside its enum",
            env(raw_inner(a, canonical_bytes(dict(base, body={"stage": "lunch"}))), "bad-body"),
            created,
            Code.BAD_BODY,
        ),
        (
            "unknown body field",
            env(
                raw_inner(a, canonical_bytes(dict(base, body={"stage": "on_scene", "x": 1}))),
                "body-extra",
            ),
            created,
            Code.BAD_BODY,
        ),
    ]
    return {
        "about": "Open each envelope as agency-b at now_ms with the keys of keys.json "
        "(agency-a ed25519:0 is revoked) and only the roster of keys.json known; expect "
        "`code` ('accepted' for the control). A refusal may name another failing check.",
        "cases": [
            {
                "name": name,
                "now_ms": now,
                "me": "agency-b",
                "code": str(code),
                "envelope": raw.decode(),
            }
            for name, raw, now, code in cases
        ],
    }


def _requests() -> dict[str, Any]:
    body = b'{"envelopes":[]}'
    cases = []
    for origin, dest, method, path, payload in (
        ("agency-a", "hub-east", "PUT", "/fed/v1/send/01JGZ0000000000000000000TX?x=1", body),
        ("hub-east", "agency-b", "PUT", "/fed/v1/send/txn-7", body),
        ("agency-b", "hub-east", "GET", "/fed/v1/roster", b""),
    ):
        header = sign_request(
            signing_key=signing_key(origin),
            key_version=1,
            method=method,
            path=path,
            origin=origin,
            destination=dest,
            ts=T0,
            body=payload,
        )
        signed = {
            "body_sha256": sha256_b64u(payload),
            "destination": dest,
            "method": method,
            "origin": origin,
            "path": path.split("?", 1)[0],
            "ts": T0,
        }
        cases.append(
            {
                "method": method,
                "path": path,
                "body_b64u": b64u(payload),
                "origin": origin,
                "destination": dest,
                "ts": T0,
                "signed_canonical": canonical_bytes(signed).decode(),
                "authorization": header,
            }
        )
    return {"cases": cases}


def _workload_release() -> dict[str, Any]:
    """A `peernet.workload/v2` release (protocol.workload): per-group scale and spend."""
    from protocol.workload import GROUP_NAMES, WORKLOAD_KEYS

    groups = {g: {"scale": format_decimal(10 + i), "budget_spent": format_decimal(0.01)}
              for i, g in enumerate(GROUP_NAMES)}
    return {
        **{k: v for k, v in _release().items() if k not in ("scale", "cells")},
        "release_id": ulid(901),
        "schema": "peernet.workload/v2",
        "query_sha256": sha256_b64u(b"peernet.workload/v2 query"),
        "groups": groups,
        "budget_spent": format_decimal(0.08),
        "cells": {k: (n * 7) % 23 - 5 for n, k in enumerate(WORKLOAD_KEYS)},
    }


def _releases() -> dict[str, Any]:
    body = sample_bodies()[MessageType.AGGREGATE_RELEASE]
    v2 = wire_json(sign_release(_workload_release(), signing_key=signing_key("agency-a"),
                                key_version=1))
    return {
        "cases": [
            {
                "signer": "agency-a",
                "release_canonical": canonical_bytes(body["release"]).decode(),
                "body": body,
            },
            {
                "signer": "agency-a",
                "release_canonical": canonical_bytes(v2["release"]).decode(),
                "body": v2,
            },
        ]
    }


def _roster() -> dict[str, Any]:
    from tests.vectors import roster_vectors  # it builds on this module's keys

    return roster_vectors.build()


def _interstate() -> dict[str, Any]:
    from tests.vectors import (
        interstate_vectors,  # WIRE section 16, builds on this module
        roster_delta_vectors,
        state_stats_vectors,
    )

    return {
        "compact.json": interstate_vectors.build_compact(),
        "interstate_envelopes.json": interstate_vectors.build_envelopes(),
        "roster_delta.json": roster_delta_vectors.build(),  # WIRE section 13.1
        "state_stats.json": state_stats_vectors.build(),  # WIRE section 16.5
    }


def build() -> dict[str, Any]:
    """File name -> JSON content of every vector file."""
    return {
        "keys.json": _keys(),
        "encoding.json": _encoding(),
        "canonical.json": _canonical(),
        "signatures.json": _signatures(),
        "padding.json": _padding(),
        "envelopes.json": _envelopes(),
        "refusals.json": _refusals(),
        "requests.json": _requests(),
        "releases.json": _releases(),
        "roster.json": _roster(),
        "audit_anchor.json": _audit_anchor(),
        "aggregate_shares.json": _aggregate_shares(),
        **_interstate(),
    }


def render(content: Any) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, content in build().items():
        path = HERE / name
        text = render(content)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale vectors: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
