"""Checking interstate (`v: 2`) envelopes: the relay's checks and the recipient's.

Order (WIRE section 16; the `v: 1` order of section 9 with the network steps added):

 1. raw bytes > 64 KiB -> too_large;
 2. strict JSON, exact `v: 2` field set, types, ids, network ids, `from_network !=
    to_network`, `expires_ts >= created_ts` -> malformed; canonical size > 64 KiB ->
    too_large;
 3. `created_ts > now + 5 min` -> from_future; `now > expires_ts + 5 min` -> expired;
 4. (open only) `to_network`/`to` not this node -> wrong_recipient;
 5. `to_network` not a member of the current compact -> unknown_network /
    network_not_in_compact (a relay has nowhere to take it);
 6. key of `<from_network>/<from>` at `created_ts` -> unknown_network /
    network_not_in_compact / foreign_roster_invalid / unknown_sender / unknown_key /
    revoked_key;
 7. outer signature -> bad_signature; 8. `ct_sha256` -> ct_hash_mismatch;
 9. the sender network's roster version/hash -> roster_mismatch;
10+. (open only) unseal, unpad, inner signature, strict canonical inner, exact `v: 2`
    field set; inner `from`/`from_network` differ from the outer -> sender_mismatch;
    inner `to`/`to_network` not this node -> recipient_mismatch; msg_id, times, roster
    version differ -> layer_mismatch; type and body -> unknown_type / bad_body; the
    30-day bound of section 9 step 16 -> expired.

This path has no regex fast path: interstate traffic is a small share of a hub's load, and
one general parse keeps the rules in one place. `envelope_version` tells a receiver which
form it holds (`v` is the last key of a canonical envelope, so it is read without a parse).
"""

from __future__ import annotations

from typing import Any

import nacl.public
from pydantic import ValidationError

from protocol.canonical import MAX_SAFE_INT, canonical_bytes_of_parsed, parse_canonical, parse_json
from protocol.encoding import sha256_b64u, unb64u
from protocol.envelope import MAX_ENVELOPE_BYTES, SKEW_MS, is_sha256, is_ts, malformed
from protocol.envelope_interstate import (
    INTERSTATE_V,
    InterstateOuter,
    InterstateResolver,
    OpenedInterstate,
)
from protocol.errors import Code, ProtocolError
from protocol.ids import is_key_id, is_msg_id, is_network_id, is_node_id
from protocol.messages import BODY_MODELS, MessageType, RosterRef
from protocol.sealing import unpad, unseal
from protocol.signing import SIGNATURE_BYTES, VERIFY_KEY_BYTES, Context, verify

__all__ = ["MAX_AGE_MS", "check_interstate_outer", "envelope_version", "open_interstate_envelope"]

MAX_AGE_MS = 30 * 86_400_000  # WIRE section 9 step 16

_OUTER_FIELDS = frozenset(
    ("v", "msg_id", "from", "from_network", "to", "to_network", "created_ts", "expires_ts",
     "roster", "ct", "ct_sha256", "sig")
)
_INNER_FIELDS = frozenset(
    ("v", "type", "msg_id", "from", "from_network", "to", "to_network", "created_ts",
     "expires_ts", "thread_id", "in_reply_to", "roster_version", "body")
)


def envelope_version(raw: bytes) -> int:
    """The `v` of an envelope (1: within a network, 2: interstate); `malformed` if none."""
    if raw.endswith(b',"v":1}'):
        return 1
    if raw.endswith(b',"v":2}'):
        return 2
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(Code.TOO_LARGE, f"envelope is {len(raw)} bytes")
    obj = parse_json(raw)
    v = obj.get("v") if type(obj) is dict else None
    if type(v) is not int or v not in (1, INTERSTATE_V):
        raise malformed("unsupported v")
    return v


def _networks_ok(obj: dict[str, Any]) -> bool:
    return (
        is_network_id(obj["from_network"])
        and is_network_id(obj["to_network"])
        and obj["from_network"] != obj["to_network"]
    )


def _parse_outer(raw: bytes) -> dict[str, Any]:
    if not isinstance(raw, bytes | bytearray):
        raise malformed("envelope must be bytes")
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(Code.TOO_LARGE, f"envelope is {len(raw)} bytes")
    obj = parse_json(bytes(raw))
    if type(obj) is not dict or obj.keys() != _OUTER_FIELDS:
        raise malformed("interstate envelope field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != INTERSTATE_V:
        raise malformed("unsupported v")
    if not (is_msg_id(obj["msg_id"]) and is_node_id(obj["from"]) and is_node_id(obj["to"])):
        raise malformed("invalid msg_id, from or to")
    if not _networks_ok(obj):
        raise malformed("invalid from_network or to_network")
    created, expires = obj["created_ts"], obj["expires_ts"]
    if not (is_ts(created) and is_ts(expires)) or expires < created:
        raise malformed("invalid created_ts or expires_ts")
    ref = obj["roster"]
    if (
        type(ref) is not dict
        or ref.keys() != {"version", "sha256"}
        or type(ref["version"]) is not int
        or not 1 <= ref["version"] <= MAX_SAFE_INT
        or not is_sha256(ref["sha256"])
    ):
        raise malformed("invalid roster reference")
    if type(obj["ct"]) is not str or not is_sha256(obj["ct_sha256"]):
        raise malformed("invalid ct or ct_sha256")
    sig = obj["sig"]
    if (
        type(sig) is not dict
        or sig.keys() != {"key_id", "value"}
        or not is_key_id(sig["key_id"])
        or type(sig["value"]) is not str
    ):
        raise malformed("invalid sig")
    return obj


def _outer_parts(
    raw: bytes,
    resolver: InterstateResolver,
    now_ms: int,
    me: tuple[str, str] | None,
    check_roster: bool,
) -> tuple[InterstateOuter, bytes, bytes]:
    obj = _parse_outer(raw)
    ct = unb64u(obj["ct"])
    signature = unb64u(obj["sig"]["value"])
    if len(signature) != SIGNATURE_BYTES:
        raise malformed("signature value must be 64 bytes")
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    unsigned_bytes = canonical_bytes_of_parsed(unsigned)
    if len(canonical_bytes_of_parsed(obj)) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(Code.TOO_LARGE, "envelope exceeds 64 KiB")
    if obj["created_ts"] > now_ms + SKEW_MS:
        raise ProtocolError(Code.FROM_FUTURE, "created_ts is ahead of the clock skew")
    if now_ms > obj["expires_ts"] + SKEW_MS:
        raise ProtocolError(Code.EXPIRED, "envelope has expired")
    if me is not None and (obj["to_network"], obj["to"]) != me:
        raise ProtocolError(Code.WRONG_RECIPIENT, "envelope is addressed to another node")
    resolver.check_network(obj["to_network"])
    key = resolver.verify_key(
        obj["from_network"], obj["from"], obj["sig"]["key_id"], obj["created_ts"]
    )
    if not isinstance(key, bytes) or len(key) != VERIFY_KEY_BYTES:
        raise ProtocolError(Code.BAD_SIGNATURE, "verify key must be 32 bytes")
    verify(key, Context.OUTER, unsigned_bytes, signature, Code.BAD_SIGNATURE)
    if sha256_b64u(ct) != obj["ct_sha256"]:
        raise ProtocolError(Code.CT_HASH_MISMATCH, "ct_sha256 does not match ct")
    ref = obj["roster"]
    if check_roster:
        resolver.check_roster(obj["from_network"], ref["version"], ref["sha256"])
    outer = InterstateOuter(
        msg_id=obj["msg_id"],
        from_=obj["from"],
        from_network=obj["from_network"],
        to=obj["to"],
        to_network=obj["to_network"],
        created_ts=obj["created_ts"],
        expires_ts=obj["expires_ts"],
        roster=RosterRef(version=ref["version"], sha256=ref["sha256"]),
        ct=obj["ct"],
        ct_sha256=obj["ct_sha256"],
        key_id=obj["sig"]["key_id"],
    )
    return outer, ct, key


def check_interstate_outer(
    raw: bytes, *, resolver: InterstateResolver, now_ms: int, check_roster: bool = True
) -> InterstateOuter:
    """Everything a relaying hub can check without the recipient's key (steps 1-3, 5-9)."""
    return _outer_parts(raw, resolver, now_ms, None, check_roster)[0]


def _check_inner(obj: Any) -> None:
    if type(obj) is not dict or obj.keys() != _INNER_FIELDS:
        raise malformed("inner field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != INTERSTATE_V or type(obj["type"]) is not str:
        raise malformed("invalid inner v or type")
    if not (is_msg_id(obj["msg_id"]) and is_node_id(obj["from"]) and is_node_id(obj["to"])):
        raise malformed("invalid inner msg_id, from or to")
    if not _networks_ok(obj):
        raise malformed("invalid inner networks")
    if not (is_ts(obj["created_ts"]) and is_ts(obj["expires_ts"])):
        raise malformed("invalid inner times")
    for ref in ("thread_id", "in_reply_to"):
        if obj[ref] is not None and not is_msg_id(obj[ref]):
            raise malformed(f"invalid {ref}")
    version = obj["roster_version"]
    if type(version) is not int or not 1 <= version <= MAX_SAFE_INT:
        raise malformed("invalid roster_version")
    if type(obj["body"]) is not dict:
        raise malformed("body must be an object")


def open_interstate_envelope(
    raw: bytes,
    *,
    me_network: str,
    me: str,
    enc_key: nacl.public.PrivateKey,
    resolver: InterstateResolver,
    now_ms: int,
    check_roster: bool = True,
) -> OpenedInterstate:
    """Verify and decrypt a `v: 2` envelope addressed to `<me_network>/<me>`."""
    outer, ct, key = _outer_parts(raw, resolver, now_ms, (me_network, me), check_roster)
    plaintext = unpad(unseal(ct, enc_key))
    if len(plaintext) < SIGNATURE_BYTES:
        raise ProtocolError(Code.BAD_INNER_SIGNATURE, "no room for the inner signature")
    inner_bytes = plaintext[SIGNATURE_BYTES:]
    verify(key, Context.INNER, inner_bytes, plaintext[:SIGNATURE_BYTES],
           Code.BAD_INNER_SIGNATURE)
    obj = parse_canonical(inner_bytes)
    _check_inner(obj)
    if (obj["from"], obj["from_network"]) != (outer.from_, outer.from_network):
        raise ProtocolError(Code.SENDER_MISMATCH, "inner sender differs from the outer signer")
    if (obj["to"], obj["to_network"]) != (me, me_network):
        raise ProtocolError(Code.RECIPIENT_MISMATCH, "inner recipient is another node")
    if (
        obj["msg_id"] != outer.msg_id
        or obj["created_ts"] != outer.created_ts
        or obj["expires_ts"] != outer.expires_ts
        or obj["roster_version"] != outer.roster.version
    ):
        raise ProtocolError(Code.LAYER_MISMATCH, "inner and outer layers disagree")
    try:
        msg_type = MessageType(obj["type"])
    except ValueError:
        raise ProtocolError(Code.UNKNOWN_TYPE, "unknown message type") from None
    try:
        body = BODY_MODELS[msg_type].model_validate(obj["body"])
    except ValidationError as exc:
        raise ProtocolError(Code.BAD_BODY, f"invalid {msg_type.value} body") from exc
    if now_ms > min(outer.expires_ts, outer.created_ts + MAX_AGE_MS) + SKEW_MS:
        raise ProtocolError(Code.EXPIRED, "delivered too long after it was created")
    return OpenedInterstate(
        outer=outer, inner=obj, msg_type=msg_type, body=body, inner_bytes=inner_bytes,
        body_json=obj["body"],
    )
