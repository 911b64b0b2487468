"""Building, relaying and opening federation envelopes (DESIGN section 4).

An envelope has two layers. The inner message (type, ids, times, roster version, body) is
canonical JSON signed with context `inner`; `inner_sig || inner_bytes` is padded to a
multiple of 512 bytes and sealed to the recipient's X25519 key. The outer envelope carries
what the hub needs to relay (`v, msg_id, from, to, created_ts, expires_ts, roster, ct,
ct_sha256`) under an outer signature (context `outer`) over its canonical bytes without
`sig`.

Checks, in the order this implementation runs them (cheap and unauthenticated first; any
failing check may be named, DESIGN section 4):

`check_outer` (what a relay can check, no decryption):
 1. raw bytes longer than 64 KiB -> too_large (before parsing);
 2. strict JSON, exact field set, field types and ids, `v == 1`,
    `expires_ts >= created_ts` -> malformed;
 3. canonical size > 64 KiB -> too_large;
 4. `created_ts > now + 5 min` -> from_future; `now > expires_ts + 5 min` -> expired;
 5. (open only) `to != me` -> wrong_recipient;
 6. signer key of `from` / `sig.key_id` at `created_ts` -> unknown_sender / unknown_key /
    revoked_key (from the `KeyResolver`);
 7. outer signature over canonical bytes of the parsed envelope without `sig` ->
    bad_signature;
 8. `ct_sha256 == SHA-256(ct)` -> ct_hash_mismatch;
 9. roster version/hash (after the signature, so an unsigned envelope cannot raise a
    split-view alarm) -> roster_mismatch.

`open_envelope` then:
10. unseal -> undecryptable; unpad -> bad_padding;
11. inner signature, by the outer signer's key, over the inner bytes exactly as decrypted ->
    bad_inner_signature;
12. strict parse of the inner bytes -> malformed; not already canonical -> not_canonical
    (integer range, ASCII keys and depth are left to steps 13 and 15, which bound them);
13. exact inner field set and types -> malformed;
14. `inner.from != outer.from` -> sender_mismatch; `inner.to != me` -> recipient_mismatch;
    msg_id / created_ts / expires_ts / roster version differ -> layer_mismatch;
15. unknown `type` -> unknown_type; body fails its model -> bad_body.

Signatures are always checked over received bytes (the inner) or over the canonical bytes
of the parsed plain values (the outer); pydantic models are built only afterwards, from
values already checked, so no model is validated twice on the hot path.

Opening costs two Ed25519 verifications and one X25519 unseal; everything else is kept
lean: a canonical outer envelope (what conforming senders emit) is read with one regex
instead of a JSON parse and its signed bytes are sliced out of the input; any other input
takes the general path, which gives the same verdicts (tests/protocol/test_fast_paths.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import BaseModel, ValidationError

from protocol.canonical import (
    MAX_SAFE_INT,
    canonical_bytes,
    canonical_object_or_none,
    parse_canonical_relaxed,
    parse_json,
)
from protocol.encoding import b64u, sha256_b64u, unb64u
from protocol.errors import Code, ProtocolError
from protocol.ids import check_msg_id, check_node_id, is_key_id, is_msg_id, is_node_id, key_id
from protocol.messages import (
    BODY_MODELS,
    SHA256_PATTERN,
    AckStatus,
    BatchResponse,
    BatchResult,
    InnerMessage,
    MessageType,
    OuterEnvelope,
    RosterRef,
    Signature,
    wire_json,
)
from protocol.sealing import pad, seal, unpad, unseal
from protocol.signing import SIGNATURE_BYTES, VERIFY_KEY_BYTES, Context, sign, signing_input

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_ENVELOPE_BYTES",
    "SKEW_MS",
    "KeyResolver",
    "Opened",
    "RosterChecker",
    "Sender",
    "build_batch",
    "build_batch_response",
    "body_json",
    "build_envelope",
    "build_inner",
    "check_outer",
    "open_envelope",
    "parse_batch",
    "parse_batch_response",
    "refusal",
    "seal_outer",
]

MAX_BATCH = 50
MAX_ENVELOPE_BYTES = 65536
SKEW_MS = 300_000
# 50 envelopes of at most 64 KiB, their commas, and `{"envelopes":[]}`.
MAX_BATCH_BYTES = MAX_BATCH * (MAX_ENVELOPE_BYTES + 1) + 16

_OUTER_FIELDS = frozenset(
    ("v", "msg_id", "from", "to", "created_ts", "expires_ts", "roster", "ct", "ct_sha256", "sig")
)
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
_ROSTER_FIELDS = frozenset(("version", "sha256"))
_SIG_FIELDS = frozenset(("key_id", "value"))
_M = TypeVar("_M", bound=BaseModel)
_MESSAGE_TYPES = {member.value: member for member in MessageType}
_SHA256 = re.compile(SHA256_PATTERN[1:-1])  # exactly the canonical b64u of 32 bytes


class KeyResolver(Protocol):
    """Who may sign as whom (backed by the roster)."""

    def verify_key(self, node_id: str, key_id: str, at_ms: int) -> bytes:
        """The 32-byte Ed25519 key `key_id` of `node_id`, valid at `at_ms`; raise
        ProtocolError unknown_sender / unknown_key / revoked_key otherwise."""
        ...


class RosterChecker(Protocol):
    def check_roster(self, version: int, sha256: str) -> None:
        """Raise ProtocolError roster_mismatch unless this roster version/hash is known."""
        ...


@dataclass(frozen=True)
class Sender:
    """The local signing identity."""

    node_id: str
    key_version: int
    signing_key: nacl.signing.SigningKey

    @property
    def key_id(self) -> str:
        return key_id(self.key_version)


class Opened(NamedTuple):
    """A verified, decrypted envelope. `inner_bytes` are the signed inner bytes as received;
    `body_json` is the body as plain JSON values (e.g. for `verify_release`)."""

    outer: OuterEnvelope
    inner: InnerMessage
    body: BaseModel
    inner_bytes: bytes
    body_json: dict[str, Any]


def _malformed(detail: str) -> ProtocolError:
    return ProtocolError(Code.MALFORMED, detail)


def _is_str(value: object) -> bool:
    return type(value) is str  # exactly str: subclasses could format themselves differently


def _is_ts(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INT


def _is_sha256(value: object) -> bool:
    return type(value) is str and _SHA256.fullmatch(value) is not None


# --- building -----------------------------------------------------------------------------


def body_json(msg_type: MessageType, body: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """`body` checked against its type's model, as plain JSON values (`bad_body` if not)."""
    model_cls = BODY_MODELS[msg_type]
    if isinstance(body, BaseModel):
        if type(body) is not model_cls:
            raise ProtocolError(Code.BAD_BODY, f"{msg_type.value} needs {model_cls.__name__}")
        return wire_json(body)
    if not isinstance(body, Mapping):
        raise ProtocolError(Code.BAD_BODY, "body must be a model or a mapping")
    try:
        return wire_json(model_cls.model_validate(dict(body)))
    except ValidationError as exc:
        raise ProtocolError(Code.BAD_BODY, f"invalid {msg_type.value} body") from exc


def build_inner(
    *,
    sender: Sender,
    to: str,
    msg_type: MessageType,
    body: BaseModel | Mapping[str, Any],
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster_version: int,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
) -> tuple[bytes, bytes]:
    """Inner canonical bytes and their 64-byte `inner` signature."""
    try:
        msg_type = MessageType(msg_type)
    except ValueError as exc:
        raise ProtocolError(Code.UNKNOWN_TYPE, "unknown message type") from exc
    check_node_id(sender.node_id)
    check_node_id(to)
    check_msg_id(msg_id)
    for ref in (thread_id, in_reply_to):
        if ref is not None:
            check_msg_id(ref)
    if not (_is_ts(created_ts) and _is_ts(expires_ts)) or expires_ts < created_ts:
        raise _malformed("times must be ms integers with expires_ts >= created_ts")
    if type(roster_version) is not int or not 1 <= roster_version <= MAX_SAFE_INT:
        raise _malformed("roster version must be a positive integer")
    inner = {
        "v": 1,
        "type": msg_type.value,
        "msg_id": msg_id,
        "from": sender.node_id,
        "to": to,
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "thread_id": thread_id,
        "in_reply_to": in_reply_to,
        "roster_version": roster_version,
        "body": body_json(msg_type, body),
    }
    inner_bytes = canonical_bytes(inner)
    return inner_bytes, sign(sender.signing_key, Context.INNER, inner_bytes)


def seal_outer(
    *,
    sender: Sender,
    to: str,
    recipient_enc_key: bytes,
    sealed_plaintext: bytes,
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster: RosterRef,
    ephemeral_seed: bytes | None = None,
) -> bytes:
    """Pad and seal `sealed_plaintext` (normally `inner_sig || inner_bytes`), wrap it in a
    signed outer envelope and return the envelope's canonical bytes.

    Exposed separately from `build_envelope` so tests can build deliberately inconsistent
    layers. `ephemeral_seed` is for test vectors only (see `protocol.sealing`)."""
    if not isinstance(roster, RosterRef):
        raise _malformed("roster must be a RosterRef")
    ct = seal(pad(sealed_plaintext), recipient_enc_key, ephemeral_seed=ephemeral_seed)
    outer: dict[str, Any] = {
        "v": 1,
        "msg_id": check_msg_id(msg_id),
        "from": check_node_id(sender.node_id),
        "to": check_node_id(to),
        "created_ts": created_ts,
        "expires_ts": expires_ts,
        "roster": {"version": roster.version, "sha256": roster.sha256},
        "ct": b64u(ct),
        "ct_sha256": sha256_b64u(ct),
    }
    signature = sign(sender.signing_key, Context.OUTER, canonical_bytes(outer))
    outer["sig"] = {"key_id": sender.key_id, "value": b64u(signature)}
    raw = canonical_bytes(outer)
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(Code.TOO_LARGE, f"envelope is {len(raw)} bytes")
    return raw


def build_envelope(
    *,
    sender: Sender,
    to: str,
    recipient_enc_key: bytes,
    msg_type: MessageType,
    body: BaseModel | Mapping[str, Any],
    msg_id: str,
    created_ts: int,
    expires_ts: int,
    roster: RosterRef,
    thread_id: str | None = None,
    in_reply_to: str | None = None,
    ephemeral_seed: bytes | None = None,
) -> bytes:
    """A complete envelope from `sender` to `to`, as canonical bytes (build once, store,
    resend the same bytes). `ephemeral_seed` is for test vectors only."""
    if not isinstance(roster, RosterRef):
        raise _malformed("roster must be a RosterRef")
    inner_bytes, inner_sig = build_inner(
        sender=sender,
        to=to,
        msg_type=msg_type,
        body=body,
        msg_id=msg_id,
        created_ts=created_ts,
        expires_ts=expires_ts,
        roster_version=roster.version,
        thread_id=thread_id,
        in_reply_to=in_reply_to,
    )
    return seal_outer(
        sender=sender,
        to=to,
        recipient_enc_key=recipient_enc_key,
        sealed_plaintext=inner_sig + inner_bytes,
        msg_id=msg_id,
        created_ts=created_ts,
        expires_ts=expires_ts,
        roster=roster,
        ephemeral_seed=ephemeral_seed,
    )


# --- checking -----------------------------------------------------------------------------


# The canonical encoding of a well-formed outer envelope, as one pattern: keys in sorted
# order, no whitespace, every string from an alphabet JSON never escapes. A conforming
# sender emits exactly this, so the hot path reads the fields with one regex match instead
# of a JSON parse, and the signed bytes are the input minus its `"sig":{...},` member.
# `ct` (the bulk of the bytes) is cut out with `find` first and left for `unb64u` to check
# strictly: the regex engine is slow over long runs. Anything else (valid but not
# canonical JSON, or invalid) takes the general path, which decides.
_INT = r"(0|[1-9][0-9]{0,15})"
_SHA = SHA256_PATTERN[1:-1]  # exactly the canonical b64u of 32 bytes
_CT_AT = len('{"created_ts":')
_CANONICAL_OUTER = re.compile(
    r'\{"created_ts":' + _INT + r',"ct":"","ct_sha256":"(' + _SHA + ')",'
    r'"expires_ts":' + _INT + r',"from":"([a-z0-9][a-z0-9-]{2,62})",'
    r'"msg_id":"([0-7][0-9A-HJKMNP-TV-Z]{25})",'
    r'"roster":\{"sha256":"(' + _SHA + ')","version":' + _INT + r"\},"
    r'("sig":\{"key_id":"(ed25519:(?:0|[1-9][0-9]{0,15}))","value":"([A-Za-z0-9_-]{86})"\},)'
    r'"to":"([a-z0-9][a-z0-9-]{2,62})","v":1\}'
)


def _match_canonical(raw: bytes) -> tuple[dict[str, Any], bytes] | None:
    """Fields and signed bytes of a canonical outer envelope, or None to parse generally.
    Only checks the regex cannot express remain for the caller's field checks."""
    if not raw.isascii():
        return None
    text = raw.decode("ascii")
    start = text.find(',"ct":"', _CT_AT) + 7
    end = text.find('"', start)
    if start < 7 or end < 0:
        return None
    ct = text[start:end]
    if "\\" in ct:
        return None  # an escape in ct may still decode to valid base64url: parse generally
    match = _CANONICAL_OUTER.fullmatch(text[:start] + text[end:])
    if match is None:
        return None
    g = match.groups()
    obj = {
        "created_ts": int(g[0]),
        "ct": ct,
        "ct_sha256": g[1],
        "expires_ts": int(g[2]),
        "from": g[3],
        "msg_id": g[4],
        "roster": {"sha256": g[5], "version": int(g[6])},
        "sig": {"key_id": g[8], "value": g[9]},
        "to": g[10],
        "v": 1,
    }
    shift = end - start
    return obj, raw[: match.start(8) + shift] + raw[match.end(8) + shift :]


def _parse_outer(raw: bytes | Mapping[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    """The outer envelope as checked plain values, its signed bytes (canonical bytes
    without `sig`) and the raw ciphertext. `ct` is decoded (strictly) before the signed
    bytes are templated: only base64url text may enter the template."""
    if type(raw) is bytes or isinstance(raw, bytes | bytearray):  # exact type first: cheaper
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise ProtocolError(Code.TOO_LARGE, f"envelope is {len(raw)} bytes")
        matched = _match_canonical(raw if type(raw) is bytes else bytes(raw))
        if matched is not None:
            obj, unsigned = matched
            # The pattern fixed the key set, the types, the id and hash alphabets and the
            # key id's form; what is left is numeric range (only a 16-digit key version
            # can exceed 2^53 - 1):
            version, created, expires = (
                obj["roster"]["version"],
                obj["created_ts"],
                obj["expires_ts"],
            )
            kid = obj["sig"]["key_id"]
            if (
                max(created, expires, version) > MAX_SAFE_INT
                or version < 1
                or expires < created
                or (len(kid) == _LONGEST_KEY_ID and int(kid[8:]) > MAX_SAFE_INT)
            ):
                raise _malformed("envelope field out of range")
            return obj, unsigned, unb64u(obj["ct"])
        obj = parse_json(raw)
    elif isinstance(raw, Mapping):
        obj = dict(raw)
    else:
        raise _malformed("envelope must be bytes or an object")
    if type(obj) is not dict or obj.keys() != _OUTER_FIELDS:
        raise _malformed("envelope field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != 1:
        raise _malformed("unsupported v")
    if not (_is_str(obj["msg_id"]) and _is_str(obj["from"]) and _is_str(obj["to"])):
        raise _malformed("msg_id, from and to must be strings")
    if not is_msg_id(obj["msg_id"]) or not is_node_id(obj["from"]) or not is_node_id(obj["to"]):
        raise _malformed("invalid msg_id, from or to")
    created, expires = obj["created_ts"], obj["expires_ts"]
    if not (_is_ts(created) and _is_ts(expires)) or expires < created:
        raise _malformed("invalid created_ts or expires_ts")
    roster = obj["roster"]
    if (
        type(roster) is not dict
        or roster.keys() != _ROSTER_FIELDS
        or type(roster["version"]) is not int
        or not 1 <= roster["version"] <= MAX_SAFE_INT
        or not _is_sha256(roster["sha256"])
    ):
        raise _malformed("invalid roster reference")
    if type(obj["ct"]) is not str or not _is_sha256(obj["ct_sha256"]):
        raise _malformed("invalid ct or ct_sha256")
    sig = obj["sig"]
    if (
        type(sig) is not dict
        or sig.keys() != _SIG_FIELDS
        or not _is_str(sig["key_id"])
        or not is_key_id(sig["key_id"])
        or not _is_str(sig["value"])
    ):
        raise _malformed("invalid sig")
    ct = unb64u(obj["ct"])  # strict: after this, ct is plain base64url text
    return obj, _unsigned_bytes(obj), ct


def _unsigned_bytes(obj: dict[str, Any]) -> bytes:
    """Canonical bytes of the outer envelope without `sig`.

    `_parse_outer` checked every value: integers are `int`, strings are `str` matching
    ASCII patterns that JSON never escapes. For such values this template (keys in sorted
    order, no whitespace) *is* the canonical encoding, at a fraction of the cost of the
    general encoder; tests compare it with `canonical_bytes`."""
    ref = obj["roster"]
    return (
        f'{{"created_ts":{obj["created_ts"]},"ct":"{obj["ct"]}",'
        f'"ct_sha256":"{obj["ct_sha256"]}","expires_ts":{obj["expires_ts"]},'
        f'"from":"{obj["from"]}","msg_id":"{obj["msg_id"]}",'
        f'"roster":{{"sha256":"{ref["sha256"]}","version":{ref["version"]}}},'
        f'"to":"{obj["to"]}","v":1}}'
    ).encode("ascii")


_LONGEST_KEY_ID = len("ed25519:") + len(str(MAX_SAFE_INT))
_SIG_MEMBER_BYTES = len(',"sig":{"key_id":"","value":""}')
_OUTER_PREFIX = signing_input(Context.OUTER, b"")
_INNER_PREFIX = signing_input(Context.INNER, b"")


def _verify(verify_key: bytes, signed: bytes, code: Code) -> None:
    """`protocol.signing.verify` for the hot path: `signed` is already `signature (64 bytes)
    || context prefix || data`, the one buffer libsodium's `crypto_sign_open` reads, and
    the caller checked the key and the signature length once."""
    try:
        nacl.bindings.crypto_sign_open(signed, verify_key)
    except nacl.exceptions.CryptoError as exc:
        raise ProtocolError(code, "signature does not verify") from exc


def _trusted(cls: type[_M], fields: dict[str, Any]) -> _M:
    """A model from values already checked field by field, without validating them again
    (what pydantic's `model_construct` does, minus its per-field bookkeeping). Tests check
    that the result equals `model_validate` of the same wire values."""
    model = _new(cls)  # no wire model defines __new__ (tests check): skip the MRO lookup
    _setattr(model, "__dict__", fields)
    _setattr(model, "__pydantic_fields_set__", set(fields))
    _setattr(model, "__pydantic_extra__", None)
    _setattr(model, "__pydantic_private__", None)
    return model


_new = object.__new__
_setattr = object.__setattr__


def _check_outer(
    raw: bytes | Mapping[str, Any],
    keys: KeyResolver,
    roster: RosterChecker | None,
    now_ms: int,
    me: str | None,
) -> tuple[OuterEnvelope, bytes, bytes]:
    """Shared by `check_outer` and `open_envelope`: the outer model, the raw ciphertext and
    the signer's verify key."""
    obj, unsigned_bytes, ct = _parse_outer(raw)
    sig = obj["sig"]
    signature = unb64u(sig["value"])
    if len(signature) != SIGNATURE_BYTES:
        raise _malformed("signature value must be 64 bytes")
    size = len(unsigned_bytes) + _SIG_MEMBER_BYTES + len(sig["key_id"]) + len(sig["value"])
    if size > MAX_ENVELOPE_BYTES:
        raise ProtocolError(Code.TOO_LARGE, "envelope exceeds 64 KiB")

    if obj["created_ts"] > now_ms + SKEW_MS:
        raise ProtocolError(Code.FROM_FUTURE, "created_ts is ahead of the clock skew")
    if now_ms > obj["expires_ts"] + SKEW_MS:
        raise ProtocolError(Code.EXPIRED, "envelope has expired")
    if me is not None and obj["to"] != me:
        raise ProtocolError(Code.WRONG_RECIPIENT, "envelope is addressed to another node")

    verify_key = keys.verify_key(obj["from"], sig["key_id"], obj["created_ts"])
    if not isinstance(verify_key, bytes) or len(verify_key) != VERIFY_KEY_BYTES:
        raise ProtocolError(Code.BAD_SIGNATURE, "verify key must be 32 bytes")
    _verify(verify_key, signature + _OUTER_PREFIX + unsigned_bytes, Code.BAD_SIGNATURE)
    if sha256_b64u(ct) != obj["ct_sha256"]:
        raise ProtocolError(Code.CT_HASH_MISMATCH, "ct_sha256 does not match ct")
    ref = obj["roster"]
    if roster is not None:
        roster.check_roster(ref["version"], ref["sha256"])

    outer = _trusted(
        OuterEnvelope,
        {
            "v": 1,
            "msg_id": obj["msg_id"],
            "from_": obj["from"],
            "to": obj["to"],
            "created_ts": obj["created_ts"],
            "expires_ts": obj["expires_ts"],
            "roster": _trusted(RosterRef, {"version": ref["version"], "sha256": ref["sha256"]}),
            "ct": obj["ct"],
            "ct_sha256": obj["ct_sha256"],
            "sig": _trusted(Signature, {"key_id": sig["key_id"], "value": sig["value"]}),
        },
    )
    return outer, ct, verify_key


def check_outer(
    raw: bytes | Mapping[str, Any],
    *,
    keys: KeyResolver,
    roster: RosterChecker | None,
    now_ms: int,
) -> OuterEnvelope:
    """Everything a relay can check without the recipient's key (steps 1-4, 6-9)."""
    return _check_outer(raw, keys, roster, now_ms, None)[0]


def _check_inner(obj: Any) -> None:
    if type(obj) is not dict or obj.keys() != _INNER_FIELDS:
        raise _malformed("inner field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != 1 or type(obj["type"]) is not str:
        raise _malformed("invalid inner v or type")
    if not is_msg_id(obj["msg_id"]) or not is_node_id(obj["from"]) or not is_node_id(obj["to"]):
        raise _malformed("invalid inner msg_id, from or to")
    if not (_is_ts(obj["created_ts"]) and _is_ts(obj["expires_ts"])):
        raise _malformed("invalid inner times")
    for ref in ("thread_id", "in_reply_to"):
        if obj[ref] is not None and not is_msg_id(obj[ref]):
            raise _malformed(f"invalid {ref}")
    version = obj["roster_version"]
    if type(version) is not int or not 1 <= version <= MAX_SAFE_INT:
        raise _malformed("invalid roster_version")
    if type(obj["body"]) is not dict:
        raise _malformed("body must be an object")


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
    outer, ct, verify_key = _check_outer(raw, keys, roster, now_ms, me)
    plaintext = unpad(unseal(ct, enc_key))
    if len(plaintext) < SIGNATURE_BYTES:
        raise ProtocolError(Code.BAD_INNER_SIGNATURE, "no room for the inner signature")
    inner_bytes = plaintext[SIGNATURE_BYTES:]
    signed = plaintext[:SIGNATURE_BYTES] + _INNER_PREFIX + inner_bytes
    _verify(verify_key, signed, Code.BAD_INNER_SIGNATURE)

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

    inner = _trusted(
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


# --- batches ------------------------------------------------------------------------------


def build_batch(envelopes: Sequence[bytes]) -> bytes:
    """`{"envelopes":[...]}` from envelopes' canonical bytes, without re-serializing them
    (the result is canonical when each envelope is)."""
    if len(envelopes) > MAX_BATCH:
        raise ProtocolError(Code.BATCH_TOO_LARGE, f"{len(envelopes)} envelopes > {MAX_BATCH}")
    for envelope in envelopes:
        if not isinstance(envelope, bytes) or not envelope.startswith(b"{"):
            raise _malformed("each envelope must be its canonical bytes")
        if len(envelope) > MAX_ENVELOPE_BYTES:
            raise ProtocolError(Code.TOO_LARGE, "envelope exceeds 64 KiB")
    return b'{"envelopes":[' + b",".join(envelopes) + b"]}"


def parse_batch(body: bytes) -> list[object]:
    """The envelopes of a batch request body, as plain JSON values, unchecked (pass each to
    `check_outer`/`open_envelope`). The whole request is refused when the body is not one
    strict JSON object `{"envelopes": [...]}` (malformed) or holds more than 50
    (batch_too_large)."""
    if isinstance(body, bytes | bytearray) and len(body) > MAX_BATCH_BYTES:
        raise ProtocolError(Code.TOO_LARGE, "batch body too large")
    obj = parse_json(body)
    if type(obj) is not dict or obj.keys() != {"envelopes"}:
        raise _malformed('batch must be exactly {"envelopes": [...]}')
    envelopes = obj["envelopes"]
    if type(envelopes) is not list:
        raise _malformed("envelopes must be an array")
    if len(envelopes) > MAX_BATCH:
        raise ProtocolError(Code.BATCH_TOO_LARGE, f"{len(envelopes)} envelopes > {MAX_BATCH}")
    return envelopes


def refusal(item: object, code: Code) -> BatchResult:
    """The result for a refused batch item, naming its msg_id when one can be read."""
    msg_id = item.get("msg_id") if isinstance(item, dict) else None
    return BatchResult.model_construct(
        msg_id=msg_id if is_msg_id(msg_id) else None,
        status=AckStatus.REFUSED,
        code=Code(code),
    )


def build_batch_response(results: Sequence[BatchResult]) -> bytes:
    """`{"results": [...]}` in batch order."""
    return canonical_bytes({"results": [wire_json(result) for result in results]})


def parse_batch_response(body: bytes, expected: int | None = None) -> list[BatchResult]:
    """Strictly parse a batch response; `expected` is the number of envelopes sent."""
    try:
        response = BatchResponse.model_validate(parse_json(body))
    except ValidationError as exc:
        raise _malformed("invalid batch response") from exc
    if expected is not None and len(response.results) != expected:
        raise _malformed("batch response has the wrong number of results")
    return list(response.results)
