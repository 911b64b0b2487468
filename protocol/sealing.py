"""Sealing the inner layer: ISO/IEC 7816-4 padding and libsodium sealed boxes.

`ct = crypto_box_seal(sodium_pad(inner_sig || inner_bytes, 512), recipient_x25519_pk)`.
Padding to 512-byte buckets hides the exact length of the inner message from the hub.
A sealed box is `epk || crypto_box_easy(m, nonce, pk, esk)` with a fresh ephemeral key pair
(epk, esk) and `nonce = BLAKE2b-192(epk || pk)`; it adds 48 bytes.

The ephemeral key normally comes from libsodium's RNG. `seal(..., ephemeral_seed=...)`
derives it with `crypto_box_seed_keypair` instead, so that published test vectors are
byte-exact. Never use a seed outside vectors: one seed, one recipient, two messages means
one keystream used twice.
"""

from __future__ import annotations

import hashlib

import nacl.bindings
import nacl.exceptions
import nacl.public

from protocol.errors import Code, ProtocolError

__all__ = ["PAD_BLOCK", "SEAL_OVERHEAD", "pad", "seal", "unpad", "unseal"]

PAD_BLOCK = 512
SEAL_OVERHEAD = 48  # ephemeral public key (32) + Poly1305 tag (16)


def pad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """`sodium_pad`: append 0x80 then zeros up to the next multiple of `block` (always at
    least one byte of padding)."""
    return nacl.bindings.sodium_pad(data, block)


def unpad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """Inverse of `pad` with `sodium_unpad`'s verdicts (the marker 0x80 must be followed
    only by zeros and lie in the last block), refusing anything else as `bad_padding`.

    Plain Python rather than `sodium_unpad`: libsodium's version is constant-time against
    padding oracles, but here the plaintext was already authenticated by the sealed box,
    and this avoids two buffer copies on the hot path (tests check the equivalence)."""
    if not isinstance(data, bytes) or not data or len(data) % block:
        raise ProtocolError(Code.BAD_PADDING, "padded length is not a multiple of the block")
    stripped = data.rstrip(b"\0")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= block:
        raise ProtocolError(Code.BAD_PADDING, "invalid ISO/IEC 7816-4 padding")
    return stripped[:-1]


def seal(
    plaintext: bytes, recipient_public: bytes, *, ephemeral_seed: bytes | None = None
) -> bytes:
    """Sealed box of `plaintext` to a 32-byte X25519 public key."""
    if not isinstance(recipient_public, bytes) or len(recipient_public) != 32:
        raise ProtocolError(Code.MALFORMED, "recipient encryption key must be 32 bytes")
    try:
        if ephemeral_seed is None:
            return nacl.bindings.crypto_box_seal(plaintext, recipient_public)
        epk, esk = nacl.bindings.crypto_box_seed_keypair(ephemeral_seed)
        nonce = hashlib.blake2b(epk + recipient_public, digest_size=24).digest()
        return epk + nacl.bindings.crypto_box(plaintext, nonce, recipient_public, esk)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ProtocolError(Code.MALFORMED, "cannot seal to this key") from exc


def unseal(ciphertext: bytes, private_key: nacl.public.PrivateKey) -> bytes:
    """Open a sealed box; `undecryptable` if it was not sealed to `private_key` or altered."""
    if not isinstance(private_key, nacl.public.PrivateKey):
        raise ProtocolError(Code.UNDECRYPTABLE, "no X25519 private key to open with")
    try:
        # bytes(): the raw keys without the encoder layer of `.encode()`
        return nacl.bindings.crypto_box_seal_open(
            ciphertext, bytes(private_key.public_key), bytes(private_key)
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ProtocolError(Code.UNDECRYPTABLE, "sealed box does not open") from exc
