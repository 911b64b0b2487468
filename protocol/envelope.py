"""Federation envelopes (DESIGN section 4): their limits, their parties, and building them.

An envelope has two layers. The inner message (type, ids, times, roster version, body) is
canonical JSON signed with context `inner`; `inner_sig || inner_bytes` is padded to a
multiple of 512 bytes and sealed to the recipient's X25519 key. The outer envelope carries
what the hub needs to relay (`v, msg_id, from, to, created_ts, expires_ts, roster, ct,
ct_sha256`) under an outer signature (context `outer`) over its canonical bytes without
`sig`.

This module builds envelopes (`build_envelope`, from `build_inner` and `seal_outer`) and
holds what every envelope module shares: the limits, `Sender`, `Opened`, the `KeyResolver`
/ `RosterChecker` protocols and the field-shape checks. Checking is split by layer:
`protocol.envelope_outer` (`check_outer`: what a relay can check, no decryption) and
`protocol.envelope_open` (`open_envelope`: the recipient's checks); the batch request and
response bodies are `protocol.batch`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
from pydantic import BaseModel, ValidationError

from protocol.canonical import (
    MAX_SAFE_INT,
    canonical_bytes,
)
from protocol.encoding import b64u, sha256_b64u
from protocol.errors import Code, ProtocolError
from protocol.ids import check_msg_id, check_node_id, key_id
from protocol.messages import BODY_MODELS, InnerMessage, MessageType, OuterEnvelope, RosterRef
from protocol.sealing import pad, seal
from protocol.signing import Context, sign
from protocol.wire_types import SHA256_PATTERN, wire_json

__all__ = [
    "KeyResolver",
    "MAX_BATCH",
    "MAX_ENVELOPE_BYTES",
    "Opened",
    "RosterChecker",
    "SKEW_MS",
    "signed_outer",
    "Sender",
    "body_json",
    "build_envelope",
    "build_inner",
    "is_json_str",
    "is_sha256",
    "is_ts",
    "malformed",
    "seal_outer",
]

MAX_BATCH = 50
MAX_ENVELOPE_BYTES = 65536
SKEW_MS = 300_000
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


def malformed(detail: str) -> ProtocolError:
    return ProtocolError(Code.MALFORMED, detail)


def is_json_str(value: object) -> bool:
    return type(value) is str  # exactly str: subclasses could format themselves differently


def is_ts(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_SAFE_INT


def is_sha256(value: object) -> bool:
    return type(value) is str and _SHA256.fullmatch(value) is not None



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
    if not (is_ts(created_ts) and is_ts(expires_ts)) or expires_ts < created_ts:
        raise malformed("times must be ms integers with expires_ts >= created_ts")
    if type(roster_version) is not int or not 1 <= roster_version <= MAX_SAFE_INT:
        raise malformed("roster version must be a positive integer")
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
        raise malformed("roster must be a RosterRef")
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
    return signed_outer(outer, sender)


def signed_outer(outer: dict[str, Any], sender: Sender) -> bytes:
    """`outer` signed by `sender` (OUTER context over its canonical bytes, `sig` added), as
    canonical bytes within MAX_ENVELOPE_BYTES: the last step of every envelope version."""
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
        raise malformed("roster must be a RosterRef")
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

