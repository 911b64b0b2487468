"""The one exception root of `protocol`, and the stable refusal codes of the wire format.

Every failure in this package raises `ProtocolError` with a `Code`; nothing else escapes
(no bare `KeyError`, `ValueError`, nacl or pydantic exception). Codes are part of the wire
contract (DESIGN section 4): they travel in batch results and in error bodies, so a value is
never renamed. `detail` is for logs: it never holds key material, ciphertext or plaintext.

`HTTP_STATUS` is the one table from codes to HTTP statuses. A per-envelope refusal inside a
batch travels in the batch result (the request itself answers 200); the table applies when a
whole request is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["HTTP_STATUS", "Code", "ProtocolError"]


class Code(StrEnum):
    """Stable refusal codes (DESIGN section 4)."""

    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    BAD_SIGNATURE = "bad_signature"
    CT_HASH_MISMATCH = "ct_hash_mismatch"
    WRONG_RECIPIENT = "wrong_recipient"
    EXPIRED = "expired"
    FROM_FUTURE = "from_future"
    ROSTER_MISMATCH = "roster_mismatch"
    UNDECRYPTABLE = "undecryptable"
    BAD_PADDING = "bad_padding"
    BAD_INNER_SIGNATURE = "bad_inner_signature"
    NOT_CANONICAL = "not_canonical"
    SENDER_MISMATCH = "sender_mismatch"
    RECIPIENT_MISMATCH = "recipient_mismatch"
    LAYER_MISMATCH = "layer_mismatch"
    UNKNOWN_TYPE = "unknown_type"
    BAD_BODY = "bad_body"
    BAD_REQUEST_SIGNATURE = "bad_request_signature"
    # shared aggregation (WIRE section 14): answers of an aggregator to an authentic message
    CONFLICTING_SHARE = "conflicting_share"
    SHARE_MISMATCH = "share_mismatch"
    ROUND_CONFLICT = "round_conflict"
    # interstate (WIRE section 16)
    UNKNOWN_NETWORK = "unknown_network"
    NETWORK_NOT_IN_COMPACT = "network_not_in_compact"
    FOREIGN_ROSTER_INVALID = "foreign_roster_invalid"


class ProtocolError(Exception):
    """A refusal with a stable `code` and a log-safe `detail`."""

    def __init__(self, code: Code, detail: str = "") -> None:
        self.code = Code(code)
        self.detail = detail
        super().__init__(f"{self.code.value}: {detail}" if detail else self.code.value)

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.detail!r})"


HTTP_STATUS: Mapping[Code, int] = MappingProxyType(
    {
        Code.MALFORMED: 400,
        Code.TOO_LARGE: 413,
        Code.BATCH_TOO_LARGE: 413,
        Code.UNKNOWN_SENDER: 403,
        Code.UNKNOWN_KEY: 403,
        Code.REVOKED_KEY: 403,
        Code.BAD_SIGNATURE: 401,
        Code.CT_HASH_MISMATCH: 400,
        Code.WRONG_RECIPIENT: 421,
        Code.EXPIRED: 401,
        Code.FROM_FUTURE: 401,
        Code.ROSTER_MISMATCH: 409,
        Code.UNDECRYPTABLE: 400,
        Code.BAD_PADDING: 400,
        Code.BAD_INNER_SIGNATURE: 400,
        Code.NOT_CANONICAL: 400,
        Code.SENDER_MISMATCH: 400,
        Code.RECIPIENT_MISMATCH: 400,
        Code.LAYER_MISMATCH: 400,
        Code.UNKNOWN_TYPE: 400,
        Code.BAD_BODY: 422,
        Code.BAD_REQUEST_SIGNATURE: 401,
        Code.CONFLICTING_SHARE: 409,
        Code.SHARE_MISMATCH: 422,
        Code.ROUND_CONFLICT: 409,
        Code.UNKNOWN_NETWORK: 404,
        Code.NETWORK_NOT_IN_COMPACT: 403,
        Code.FOREIGN_ROSTER_INVALID: 409,
    }
)
