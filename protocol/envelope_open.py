"""Opening an envelope addressed to this server: the outer checks, then the inner layer.

`open_envelope` runs every check of `protocol.envelope_outer` (with `to == me`), then:

10. unseal -> undecryptable; unpad -> bad_padding;
11. inner signature, by the outer signer's key, over the inner bytes exactly as decrypted ->
    bad_inner_signature;
12. strict parse of the inner bytes -> malformed; not already canonical -> not_canonical
    (integer range, ASCII keys and depth are left to steps 13 and 15, which bound them);
13. exact inner field set and types -> malformed;
14. `inner.from != outer.from` -> sender_mismatch; `inner.to != me` -> recipient_mismatch;
    msg_id / created_ts / expires_ts / roster version differ -> layer_mismatch;
15. unknown `type` -> unknown_type; body fails its model -> bad_body.

The inner signature is checked over the bytes as received. Opening costs two Ed25519
verifications and one X25519 unseal; everything else is kept lean: a canonical inner
message has its ten tail fields read by one pattern and only its body proved canonical.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import ValidationError

from protocol.canonical import (
    MAX_SAFE_INT,
    canonical_object_or_none,
    parse_canonical_relaxed,
)
from protocol.envelope import KeyResolver, Opened, RosterChecker, is_ts, malformed
from protocol.envelope_outer import check_outer_parts, trusted_model, verify_signed
from protocol.errors import Code, ProtocolError
from protocol.ids import is_msg_id, is_node_id
from protocol.messages import (
    BODY_MODELS,
    InnerMessage,
    MessageType,
)
from protocol.sealing import unpad, unseal
from protocol.signing import SIGNATURE_BYTES, Context, signing_input

__all__ = [
    "open_envelope",
]

_INNER_FIELDS = frozenset(
    (
        "v",
        "type",
        "msg_id",
        "from",
        "to",
        "created_ts",
        "expires_ts",
        "thread_id",
        "in_reply_to",
        "roster_version",
        "body",
    )
)
_INT = r"(0|[1-9][0-9]{0,15})"  # a JSON integer of at most 16 digits, as in envelope_outer
_MESSAGE_TYPES = {member.value: member for member in MessageType}
_INNER_PREFIX = signing_input(Context.INNER, b"")


def _check_inner(obj: Any) -> None:
    if type(obj) is not dict or obj.keys() != _INNER_FIELDS:
        raise malformed("inner field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != 1 or type(obj["type"]) is not str:
        raise malformed("invalid inner v or type")
    if not is_msg_id(obj["msg_id"]) or not is_node_id(obj["from"]) or not is_node_id(obj["to"]):
        raise malformed("invalid inner msg_id, from or to")
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


# The canonical inner message is `{"body":<body>` followed by the ten other fields in sorted
# order, all from alphabets JSON never escapes. The hot path reads those ten with one
# pattern anchored after the body (the last `,"created_ts":` is the only place it can
# start: nothing in the tail contains it) and proves only the body's text canonical, the
# one part of unknown shape. Anything else takes the general path, which decides.
_INNER_HEAD = '{"body":'
_INNER_TAIL_AT = ',"created_ts":'
_ULID = r"[0-7][0-9A-HJKMNP-TV-Z]{25}"
_NODE = r"[a-z0-9][a-z0-9-]{2,62}"
_CANONICAL_INNER_TAIL = re.compile(
    _INNER_TAIL_AT + _INT + r',"expires_ts":' + _INT + r',"from":"(' + _NODE + r')",'
    r'"in_reply_to":(?:null|"(' + _ULID + r')"),"msg_id":"(' + _ULID + r')",'
    r'"roster_version":' + _INT + r',"thread_id":(?:null|"(' + _ULID + r')"),'
    r'"to":"(' + _NODE + r')","type":"([a-z_]{1,32})","v":1\}'
)


def _match_canonical_inner(inner_bytes: bytes) -> dict[str, Any] | None:
    """The inner message's plain values when its bytes are canonical and its field set
    and field types are what `_check_inner` demands; None to parse generally."""
    try:
        text = inner_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    at = text.rfind(_INNER_TAIL_AT)
    if at < 0 or not text.startswith(_INNER_HEAD):
        return None
    match = _CANONICAL_INNER_TAIL.fullmatch(text, at)
    if match is None:
        return None
    created, expires, sender, in_reply_to, msg_id, version, thread_id, to, msg_type = match.groups()
    created_ts, expires_ts, roster_version = int(created), int(expires), int(version)
    if max(created_ts, expires_ts, roster_version) > MAX_SAFE_INT or roster_version < 1:
        return None
    body = canonical_object_or_none(text[len(_INNER_HEAD) : at])
    if body is None:
        return None
    return {
        "body": body,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "from": sender,
        "in_reply_to": in_reply_to,
        "msg_id": msg_id,
        "roster_version": roster_version,
        "thread_id": thread_id,
        "to": to,
        "type": msg_type,
        "v": 1,
    }


def _parse_inner(inner_bytes: bytes) -> dict[str, Any]:
    """Steps 12-13: the inner message as checked plain values."""
    obj = _match_canonical_inner(inner_bytes)
    if obj is None:
        # Relaxed: `_check_inner` and the body model bound every integer and key.
        obj = parse_canonical_relaxed(inner_bytes)
        _check_inner(obj)
    return obj


def open_envelope(
    raw: bytes | Mapping[str, Any],
    *,
    me: str,
    enc_key: nacl.public.PrivateKey,
    keys: KeyResolver,
    roster: RosterChecker | None,
    now_ms: int,
) -> Opened:
    """Verify and decrypt an envelope addressed to `me` (all checks, see module doc)."""
    outer, ct, verify_key = check_outer_parts(raw, keys, roster, now_ms, me)
    plaintext = unpad(unseal(ct, enc_key))
    if len(plaintext) < SIGNATURE_BYTES:
        raise ProtocolError(Code.BAD_INNER_SIGNATURE, "no room for the inner signature")
    inner_bytes = plaintext[SIGNATURE_BYTES:]
    signed = plaintext[:SIGNATURE_BYTES] + _INNER_PREFIX + inner_bytes
    verify_signed(verify_key, signed, Code.BAD_INNER_SIGNATURE)

    obj = _parse_inner(inner_bytes)
    if obj["from"] != outer.from_:
        raise ProtocolError(Code.SENDER_MISMATCH, "inner.from differs from the outer signer")
    if obj["to"] != me:
        raise ProtocolError(Code.RECIPIENT_MISMATCH, "inner.to is another node")
    if (
        obj["msg_id"] != outer.msg_id
        or obj["created_ts"] != outer.created_ts
        or obj["expires_ts"] != outer.expires_ts
        or obj["roster_version"] != outer.roster.version
    ):
        raise ProtocolError(Code.LAYER_MISMATCH, "inner and outer layers disagree")
    msg_type = _MESSAGE_TYPES.get(obj["type"])  # a str: checked by `_parse_inner`
    if msg_type is None:
        raise ProtocolError(Code.UNKNOWN_TYPE, "unknown message type")
    try:
        # the validator itself: what `model_validate` calls, minus its Python layer
        body = BODY_MODELS[msg_type].__pydantic_validator__.validate_python(obj["body"])
    except ValidationError as exc:
        raise ProtocolError(Code.BAD_BODY, f"invalid {msg_type.value} body") from exc

    inner = trusted_model(
        InnerMessage,
        {
            "v": 1,
            "type": msg_type,
            "msg_id": obj["msg_id"],
            "from_": obj["from"],
            "to": obj["to"],
            "created_ts": obj["created_ts"],
            "expires_ts": obj["expires_ts"],
            "thread_id": obj["thread_id"],
            "in_reply_to": obj["in_reply_to"],
            "roster_version": obj["roster_version"],
            "body": obj["body"],
        },
    )
    return Opened(
        outer=outer, inner=inner, body=body, inner_bytes=inner_bytes, body_json=obj["body"]
    )

