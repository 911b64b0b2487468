"""The one exception root of `federation`, its stable codes, and the code -> HTTP table.

Wire refusals reuse the protocol's `Code` values unchanged (they travel in batch results and
must mean the same thing everywhere); `FedCode` adds the codes of governance (roster
acceptance), storage and transport that are not part of the wire format. Both are plain
strings on the wire and in JSON error bodies:

    {"error": {"code": "<stable_code>", "message": "<plain words>", "field": <name or null>}}

`message` never holds key material, ciphertext, plaintext or record contents.
Remote errors (a peer's answer) are wrapped into a `FederationError`, never passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from protocol.errors import HTTP_STATUS as PROTOCOL_HTTP_STATUS
from protocol.errors import Code, ProtocolError

__all__ = [
    "HTTP_STATUS",
    "FedCode",
    "FederationError",
    "error_body",
    "from_protocol",
    "http_status",
]


class FedCode(StrEnum):
    """Stable federation codes beyond the wire refusals of `protocol.errors.Code`."""

    # governance: roster acceptance
    BAD_ROSTER = "bad_roster"  # does not parse or does not match the roster schema
    ROSTER_THRESHOLD = "roster_threshold"  # not enough distinct board signatures
    BAD_SIGNATURES = "bad_signatures"  # board signatures that do not verify (edited)
    ROSTER_VERSION = "roster_version"  # not exactly the next version
    ROSTER_CHAIN = "roster_chain"  # prev_sha256 does not name the previous version
    ROSTER_GAP = "roster_gap"  # a fetch would walk more than MAX_ROSTER_GAP versions
    BAD_ROSTER_DELTA = "bad_roster_delta"  # a roster delta not well formed or for another base
    ROSTER_EXPIRED = "roster_expired"
    ROSTER_NOT_YET_VALID = "roster_not_yet_valid"
    SPLIT_VIEW = "split_view"  # two validly named hashes for one version
    NO_ROSTER = "no_roster"  # no accepted roster yet
    UNKNOWN_NODE = "unknown_node"  # not in the current roster
    # governance: interstate compact acceptance (federation.compact_acceptance)
    BAD_COMPACT = "bad_compact"  # does not parse or does not match the compact schema
    COMPACT_THRESHOLD = "compact_threshold"  # a member board (or ours) signed too little
    COMPACT_VERSION = "compact_version"  # not exactly the next version (rollback included)
    COMPACT_CHAIN = "compact_chain"  # prev_sha256 does not name the previous version
    COMPACT_EXPIRED = "compact_expired"  # a frozen (expired) compact
    COMPACT_NOT_YET_VALID = "compact_not_yet_valid"
    NO_COMPACT = "no_compact"  # no accepted compact yet
    # board tooling
    BAD_INPUT = "bad_input"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    # transport
    PEER_UNREACHABLE = "peer_unreachable"
    PEER_ERROR = "peer_error"  # a peer answered with an error (wrapped, not passed through)
    HANDLER_FAILED = "handler_failed"  # business logic refused a message
    NO_HANDLER = "no_handler"  # no business logic registered for this message type
    REQUEST_TIMEOUT = "request_timeout"  # a request body that did not arrive in time
    # databases (CLI and server start; federation.db_errors)
    DB_URL = "db_url"  # not a postgresql:// or sqlite:/// URL, or unparsable
    DB_UNREACHABLE = "db_unreachable"  # unknown host, nothing listening, socket missing
    DB_LOGIN = "db_login"  # the server refused the user or password
    DB_MISSING = "db_missing"  # the named database does not exist
    DB_READ_ONLY = "db_read_only"  # reachable, but the user may not create tables / write
    DB_ERROR = "db_error"  # any other database failure
    BUSY = "busy"  # SQLite: another process held the write lock past the bounded wait


_FED_HTTP: dict[str, int] = {
    FedCode.BAD_ROSTER: 400,
    FedCode.ROSTER_THRESHOLD: 422,
    FedCode.BAD_SIGNATURES: 422,
    FedCode.ROSTER_VERSION: 409,
    FedCode.ROSTER_CHAIN: 409,
    FedCode.ROSTER_GAP: 409,
    FedCode.BAD_ROSTER_DELTA: 400,
    FedCode.ROSTER_EXPIRED: 422,
    FedCode.ROSTER_NOT_YET_VALID: 422,
    FedCode.SPLIT_VIEW: 409,
    FedCode.NO_ROSTER: 503,
    FedCode.UNKNOWN_NODE: 404,
    FedCode.BAD_COMPACT: 400,
    FedCode.COMPACT_THRESHOLD: 422,
    FedCode.COMPACT_VERSION: 409,
    FedCode.COMPACT_CHAIN: 409,
    FedCode.COMPACT_EXPIRED: 422,
    FedCode.COMPACT_NOT_YET_VALID: 422,
    FedCode.NO_COMPACT: 503,
    FedCode.BAD_INPUT: 400,
    FedCode.NOT_FOUND: 404,
    FedCode.CONFLICT: 409,
    FedCode.PEER_UNREACHABLE: 502,
    FedCode.PEER_ERROR: 502,
    FedCode.HANDLER_FAILED: 422,
    FedCode.NO_HANDLER: 422,
    FedCode.REQUEST_TIMEOUT: 408,
    FedCode.DB_URL: 500,
    FedCode.DB_UNREACHABLE: 503,
    FedCode.DB_LOGIN: 503,
    FedCode.DB_MISSING: 503,
    FedCode.DB_READ_ONLY: 503,
    FedCode.DB_ERROR: 503,
    FedCode.BUSY: 503,
}

HTTP_STATUS: Mapping[str, int] = MappingProxyType(
    {**{c.value: s for c, s in PROTOCOL_HTTP_STATUS.items()}, **_FED_HTTP}
)


class FederationError(Exception):
    """A refusal or failure with a stable `code` (a `Code` or `FedCode` value)."""

    def __init__(self, code: str, message: str = "", field: str | None = None) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"unregistered federation code: {code}")
        self.code = str(code)
        self.message = message or self.code.replace("_", " ")
        self.field = field
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def is_wire_code(self) -> bool:
        """True when the code is one of the protocol's wire refusal codes."""
        return self.code in Code._value2member_map_

    def __repr__(self) -> str:
        return f"FederationError({self.code!r}, {self.message!r})"


def from_protocol(exc: ProtocolError) -> FederationError:
    """Wrap a protocol refusal, keeping its wire code."""
    return FederationError(exc.code.value, exc.detail or exc.code.value)


def http_status(code: str) -> int:
    return HTTP_STATUS.get(code, 500)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON error shape every server answers with."""
    return {"error": {"code": code, "message": message, "field": field}}
