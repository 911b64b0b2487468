"""Checking an envelope's outer layer: everything a relay can check without decrypting.

The checks, in the order this implementation runs them (cheap and unauthenticated first;
any failing check may be named, DESIGN section 4); `protocol.envelope_open` runs the same
ones (step 5 included) before its own:

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

Signatures are checked over the canonical bytes of the parsed plain values; pydantic
models are built only afterwards, from values already checked (`trusted_model`), so no
model is validated twice on the hot path. A canonical outer envelope (what conforming
senders emit) is read with one regex instead of a JSON parse and its signed bytes are
sliced out of the input; any other input takes the general path, which gives the same
verdicts (tests/protocol/test_fast_paths.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import BaseModel

from protocol.canonical import (
    MAX_SAFE_INT,
    parse_json,
)
from protocol.encoding import sha256_b64u, unb64u
from protocol.envelope import (
    MAX_ENVELOPE_BYTES,
    SKEW_MS,
    KeyResolver,
    RosterChecker,
    is_json_str,
    is_sha256,
    is_ts,
    malformed,
)
from protocol.errors import Code, ProtocolError
from protocol.ids import is_key_id, is_msg_id, is_node_id
from protocol.messages import OuterEnvelope, RosterRef
from protocol.signing import SIGNATURE_BYTES, VERIFY_KEY_BYTES, Context, signing_input
from protocol.wire_types import SHA256_PATTERN, Signature

__all__ = [
    "check_outer",
    "check_outer_parts",
    "trusted_model",
    "verify_signed",
]

_OUTER_FIELDS = frozenset(
    ("v", "msg_id", "from", "to", "created_ts", "expires_ts", "roster", "ct", "ct_sha256", "sig")
)
_ROSTER_FIELDS = frozenset(("version", "sha256"))
_SIG_FIELDS = frozenset(("key_id", "value"))
_M = TypeVar("_M", bound=BaseModel)

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
                raise malformed("envelope field out of range")
            return obj, unsigned, unb64u(obj["ct"])
        obj = parse_json(raw)
    elif isinstance(raw, Mapping):
        obj = dict(raw)
    else:
        raise malformed("envelope must be bytes or an object")
    if type(obj) is not dict or obj.keys() != _OUTER_FIELDS:
        raise malformed("envelope field set is not exact")
    if type(obj["v"]) is not int or obj["v"] != 1:
        raise malformed("unsupported v")
    if not (is_json_str(obj["msg_id"]) and is_json_str(obj["from"]) and is_json_str(obj["to"])):
        raise malformed("msg_id, from and to must be strings")
    if not is_msg_id(obj["msg_id"]) or not is_node_id(obj["from"]) or not is_node_id(obj["to"]):
        raise malformed("invalid msg_id, from or to")
    created, expires = obj["created_ts"], obj["expires_ts"]
    if not (is_ts(created) and is_ts(expires)) or expires < created:
        raise malformed("invalid created_ts or expires_ts")
    roster = obj["roster"]
    if (
        type(roster) is not dict
        or roster.keys() != _ROSTER_FIELDS
        or type(roster["version"]) is not int
        or not 1 <= roster["version"] <= MAX_SAFE_INT
        or not is_sha256(roster["sha256"])
    ):
        raise malformed("invalid roster reference")
    if type(obj["ct"]) is not str or not is_sha256(obj["ct_sha256"]):
        raise malformed("invalid ct or ct_sha256")
    sig = obj["sig"]
    if (
        type(sig) is not dict
        or sig.keys() != _SIG_FIELDS
        or not is_json_str(sig["key_id"])
        or not is_key_id(sig["key_id"])
        or not is_json_str(sig["value"])
    ):
        raise malformed("invalid sig")
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


def verify_signed(verify_key: bytes, signed: bytes, code: Code) -> None:
    """`protocol.signing.verify` for the hot path: `signed` is already `signature (64 bytes)
    || context prefix || data`, the one buffer libsodium's `crypto_sign_open` reads, and
    the caller checked the key and the signature length once."""
    try:
        nacl.bindings.crypto_sign_open(signed, verify_key)
    except nacl.exceptions.CryptoError as exc:
        raise ProtocolError(code, "signature does not verify") from exc


def trusted_model(cls: type[_M], fields: dict[str, Any]) -> _M:
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


def check_outer_parts(
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
        raise malformed("signature value must be 64 bytes")
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
    verify_signed(verify_key, signature + _OUTER_PREFIX + unsigned_bytes, Code.BAD_SIGNATURE)
    if sha256_b64u(ct) != obj["ct_sha256"]:
        raise ProtocolError(Code.CT_HASH_MISMATCH, "ct_sha256 does not match ct")
    ref = obj["roster"]
    if roster is not None:
        roster.check_roster(ref["version"], ref["sha256"])

    outer = trusted_model(
        OuterEnvelope,
        {
            "v": 1,
            "msg_id": obj["msg_id"],
            "from_": obj["from"],
            "to": obj["to"],
            "created_ts": obj["created_ts"],
            "expires_ts": obj["expires_ts"],
            "roster": trusted_model(
                RosterRef, {"version": ref["version"], "sha256": ref["sha256"]}
            ),
            "ct": obj["ct"],
            "ct_sha256": obj["ct_sha256"],
            "sig": trusted_model(Signature, {"key_id": sig["key_id"], "value": sig["value"]}),
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
    return check_outer_parts(raw, keys, roster, now_ms, None)[0]


