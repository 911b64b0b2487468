"""Signed aggregate releases (the body of `aggregate_release`, DESIGN section 7).

The body is `{"release": {...}, "sig": {"key_id": "ed25519:<v>", "value": "<b64u>"}}`; the
signature (context `release`) covers the canonical bytes of `release` alone, so a stored
release can be re-verified by the hub or the board long after the envelope is gone. The
signer is `release.node_id` (which must also be the envelope's sender; the caller checks
that, see `verify_release`'s `sender`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.signing
from pydantic import ValidationError

from protocol.canonical import canonical_bytes
from protocol.encoding import b64u, unb64u
from protocol.envelope import KeyResolver
from protocol.errors import Code, ProtocolError
from protocol.hub_bodies import AggregateReleaseBody, Release
from protocol.ids import is_key_id, is_node_id, key_id
from protocol.signing import Context, sign, verify
from protocol.wire_types import wire_json

__all__ = ["sign_release", "verify_release"]


def sign_release(
    release: Release | Mapping[str, Any],
    *,
    signing_key: nacl.signing.SigningKey,
    key_version: int,
) -> AggregateReleaseBody:
    """Validate `release` and sign it into an `aggregate_release` body."""
    try:
        model = release if isinstance(release, Release) else Release.model_validate(release)
    except ValidationError as exc:
        raise ProtocolError(Code.BAD_BODY, "invalid release") from exc
    plain = wire_json(model)
    signature = sign(signing_key, Context.RELEASE, canonical_bytes(plain))
    return AggregateReleaseBody.model_validate(
        {"release": plain, "sig": {"key_id": key_id(key_version), "value": b64u(signature)}}
    )


def verify_release(
    body: Mapping[str, Any],
    *,
    keys: KeyResolver,
    at_ms: int,
    sender: str | None = None,
) -> AggregateReleaseBody:
    """Verify a release body given as plain JSON values (e.g. `Opened.body_json`) and only
    then build its model. `sender`, when given, must equal `release.node_id`
    (sender_mismatch)."""
    release = body.get("release") if isinstance(body, Mapping) else None
    sig = body.get("sig") if isinstance(body, Mapping) else None
    if (
        not isinstance(release, dict)
        or not isinstance(sig, dict)
        or not is_node_id(release.get("node_id"))
        or not is_key_id(sig.get("key_id"))
    ):
        raise ProtocolError(Code.BAD_BODY, "release body lacks release, node_id or sig")
    if sender is not None and release["node_id"] != sender:
        raise ProtocolError(Code.SENDER_MISMATCH, "release signed for another node")
    try:
        signature = unb64u(sig.get("value"))  # type: ignore[arg-type]  # checked by unb64u
        data = canonical_bytes(release)
    except ProtocolError as exc:
        raise ProtocolError(Code.BAD_BODY, "release is not canonical JSON") from exc
    verify_key = keys.verify_key(release["node_id"], sig["key_id"], at_ms)
    verify(verify_key, Context.RELEASE, data, signature, Code.BAD_SIGNATURE)
    try:
        return AggregateReleaseBody.model_validate(dict(body))
    except ValidationError as exc:
        raise ProtocolError(Code.BAD_BODY, "invalid release") from exc
