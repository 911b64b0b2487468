"""A node's signed request to leave the network, as the node writes it and the board reads it.

Membership is governed by the board's signed roster (DESIGN section 5): nodes join by
handing the board their public info file, which the board adds to a draft it signs. Leaving
follows the same path: `peernet node detach` writes a leave request file, signed by the
node, which the agency hands to the board; `peernet board accept-leave` checks it against
the newest signed roster and edits the draft (the node removed, its signing keys revoked
with the reason "left the network"); the board signs the next version as usual.

File (JSON, `FORMAT`):

    {"format": "peernet-leave-request-v1",
     "request": {"node_id", "name", "roster_version", "ts", "reason"},
     "sig": {"key_id": "ed25519:<v>", "value": b64u}}

`sig.value` is a plain Ed25519 signature over `LEAVE_CONTEXT + canonical_bytes(request)`
with a signing key the roster lists for the node (the same construction as the audit head,
`protocol.audit_head`). Node and board never import each other, so the bytes live here.
"""

from __future__ import annotations

from typing import Any

import nacl.exceptions
import nacl.signing

from protocol.canonical import canonical_bytes, parse_json
from protocol.encoding import b64u, unb64u
from protocol.errors import Code, ProtocolError
from protocol.ids import key_id

__all__ = ["FORMAT", "LEAVE_CONTEXT", "build_leave_request", "parse_leave_request",
           "verify_leave_request"]

FORMAT = "peernet-leave-request-v1"
LEAVE_CONTEXT = b"peernet/v1/leave-request\0"
_FIELDS = {"node_id", "name", "roster_version", "ts", "reason"}


def build_leave_request(key: nacl.signing.SigningKey, key_version: int, *, node_id: str,
                        name: str, roster_version: int, ts: int, reason: str) -> dict[str, Any]:
    request = {"node_id": node_id, "name": name, "roster_version": roster_version, "ts": ts,
               "reason": reason}
    sig = key.sign(LEAVE_CONTEXT + canonical_bytes(request)).signature
    return {"format": FORMAT, "request": request,
            "sig": {"key_id": key_id(key_version), "value": b64u(bytes(sig))}}


def parse_leave_request(data: bytes) -> dict[str, Any]:
    """The document, its shape checked (`malformed` otherwise); not yet its signature."""
    doc = parse_json(data)
    ok = (isinstance(doc, dict) and doc.get("format") == FORMAT
          and isinstance(doc.get("request"), dict) and set(doc["request"]) == _FIELDS
          and isinstance(doc.get("sig"), dict) and set(doc["sig"]) == {"key_id", "value"}
          and isinstance(doc["request"]["node_id"], str)
          and isinstance(doc["request"]["reason"], str)
          and isinstance(doc["sig"]["key_id"], str) and isinstance(doc["sig"]["value"], str))
    if not ok:
        raise ProtocolError(Code.MALFORMED, "not a peernet leave request")
    return dict(doc)


def verify_leave_request(doc: dict[str, Any], verify_key: bytes) -> None:
    """Raise `ProtocolError(bad_signature)` unless `doc` is signed by `verify_key`."""
    try:
        nacl.signing.VerifyKey(verify_key).verify(
            LEAVE_CONTEXT + canonical_bytes(doc["request"]), unb64u(doc["sig"]["value"]))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError, TypeError, ProtocolError):
        raise ProtocolError(Code.BAD_SIGNATURE, "leave request signature does not verify") \
            from None
