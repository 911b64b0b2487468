"""Domain-separated Ed25519 signatures.

Every signature covers `b"peernet/v1/" + context + b"\\0" + data`, where `data` is canonical
JSON bytes (or, for the inner message, the inner bytes exactly as sealed). The context
separates the uses so that a signature made for one can never be replayed as another:
an inner signature is not an outer one, a roster signature is not a release signature, and
so on. The NUL byte ends the context so no context is a prefix of another's input.

Verification uses libsodium's `crypto_sign_open` through PyNaCl, which refuses
non-canonical `S` values and small-order public keys.
"""

from __future__ import annotations

from enum import StrEnum

import nacl.bindings
import nacl.exceptions
import nacl.signing

from protocol.errors import Code, ProtocolError

__all__ = ["SIGNATURE_BYTES", "VERIFY_KEY_BYTES", "Context", "sign", "signing_input", "verify"]

SIGNATURE_BYTES = 64
VERIFY_KEY_BYTES = 32
_PREFIX = b"peernet/v1/"


class Context(StrEnum):
    """What a signature is for (DESIGN section 4)."""

    INNER = "inner"
    OUTER = "outer"
    ROSTER = "roster"
    RELEASE = "release"
    REQUEST = "request"
    COMPACT = "compact"  # a member board's signature over an interstate compact (WIRE 16)
    STATE_STATS = "state-stats"  # a hub's published state statistics (WIRE 16.5)


_PREFIXES = {ctx: _PREFIX + ctx.value.encode("ascii") + b"\0" for ctx in Context}


def signing_input(context: Context, data: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers."""
    prefix = _PREFIXES.get(context) if isinstance(context, str) else None
    if prefix is None:
        raise ProtocolError(Code.MALFORMED, "unknown signature context")
    return prefix + data


def sign(key: nacl.signing.SigningKey, context: Context, data: bytes) -> bytes:
    """64-byte Ed25519 signature of `data` under `context`."""
    if not isinstance(key, nacl.signing.SigningKey):
        raise ProtocolError(Code.MALFORMED, "signing key must be a nacl SigningKey")
    if not isinstance(data, bytes):
        raise ProtocolError(Code.MALFORMED, "signed data must be bytes")
    return key.sign(signing_input(context, data)).signature


def verify(
    verify_key: bytes,
    context: Context,
    data: bytes,
    signature: bytes,
    code: Code = Code.BAD_SIGNATURE,
) -> None:
    """Check a signature; raise `ProtocolError(code)` unless it is valid."""
    if (
        not isinstance(verify_key, bytes)
        or len(verify_key) != VERIFY_KEY_BYTES
        or not isinstance(signature, bytes)
        or len(signature) != SIGNATURE_BYTES
        or not isinstance(data, bytes)
    ):
        raise ProtocolError(code, "bad key or signature length")
    try:
        nacl.bindings.crypto_sign_open(signature + signing_input(context, data), verify_key)
    except nacl.exceptions.CryptoError as exc:  # BadSignatureError and friends
        raise ProtocolError(code, f"{Context(context).value} signature does not verify") from exc
