"""The signed head of a node's audit log, as the node stores it and as the hub anchors it.

A node's audit log is a hash chain (`node.core.audit`); its head is the last entry's `seq` and
`hash`. The node signs

    b"peernet/v1/audit-head\\0" + canonical_bytes({"hash", "node_id", "seq", "signed_at"})

with an Ed25519 signing key (a plain Ed25519 signature over that prefix: the head was
signed this way before it travelled, so stored signatures stay valid) and sends the signed
head to the hub in an `audit_anchor` message (WIRE section 7). The hub checks the signature
with the key the roster lists for the sender and keeps the newest anchor per node, so a node
whose log was cut back to an older head (even one validly re-signed by someone holding the
key) no longer contains what the hub holds (`peernet node audit verify`).

Both sides need the same bytes, and node and hub never import each other: the format lives
here, in the wire package.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

from protocol.canonical import canonical_bytes
from protocol.errors import Code, ProtocolError

__all__ = ["HEAD_CONTEXT", "head_signing_input", "sign_head_bytes", "verify_head"]

HEAD_CONTEXT = b"peernet/v1/audit-head\0"


def head_signing_input(node_id: str, seq: int, hash_: str, signed_at: int) -> bytes:
    return HEAD_CONTEXT + canonical_bytes(
        {"node_id": node_id, "seq": seq, "hash": hash_, "signed_at": signed_at}
    )


def sign_head_bytes(key: nacl.signing.SigningKey, node_id: str, seq: int, hash_: str,
                    signed_at: int) -> bytes:
    return bytes(key.sign(head_signing_input(node_id, seq, hash_, signed_at)).signature)


def verify_head(verify_key: bytes, node_id: str, seq: int, hash_: str, signed_at: int,
                signature: bytes) -> None:
    """Raise `ProtocolError(bad_signature)` unless `signature` signs this head."""
    try:
        nacl.signing.VerifyKey(verify_key).verify(
            head_signing_input(node_id, seq, hash_, signed_at), signature
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError, TypeError):
        raise ProtocolError(Code.BAD_SIGNATURE, "audit head signature does not verify") from None
