"""The one exception root of `node`, its stable codes, and the code -> HTTP status table.

Every refusal the node's pages and JSON API give is a `NodeError` with a `Code`; the web
layer turns it into `{"error": {"code", "message", "field"}}` with the status from
`HTTP_STATUS`. Codes are a contract with scripts and other engineers' code: values are
never renamed. `message` is plain words for a person and never holds record contents,
pseudonym inputs, passwords or keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["HTTP_STATUS", "Code", "NodeError", "error_body"]


class Code(StrEnum):
    """Stable refusal codes of the node."""

    MALFORMED = "malformed"  # body is not JSON / not a form
    INVALID_INPUT = "invalid_input"  # a field has a value the schema refuses
    UNKNOWN_FIELD = "unknown_field"  # a field the schema does not have (e.g. free text)
    INVALID_ENUM = "invalid_enum"  # a value outside a field's fixed vocabulary
    TOO_LARGE = "too_large"  # request body over the size limit
    UNAUTHENTICATED = "unauthenticated"  # no valid session or API token
    BAD_CREDENTIALS = "bad_credentials"  # wrong username or password
    THROTTLED = "throttled"  # too many failed logins
    FORBIDDEN = "forbidden"  # authenticated, but the role or record is not yours
    CSRF_FAILED = "csrf_failed"  # unsafe cookie-authenticated request without a valid token
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"  # e.g. username taken, follow-up already closed
    OVER_BUDGET = "over_budget"  # a release beyond the yearly privacy budget
    PLACEHOLDER_IDENTIFIER = "placeholder_identifier"  # "unknown", "000000": names nobody
    IDENTIFIER_FORMAT = "identifier_format"  # not the agency's identifier format
    LEDGER_TAMPERED = "ledger_tampered"  # ledger disagrees with the audit chain
    MONTH_ALREADY_SENT = "month_already_sent"  # the month's release already left the node
    MONTH_NOT_FINISHED = "month_not_finished"  # the month has not ended (or the clock is ahead)
    TRANSFER_PENDING = "transfer_pending"  # a follow-up waits for another agency's answer
    ROSTER_UNREADABLE = "roster_unreadable"  # the accepted roster could not be loaded
    CONFIG = "config"  # missing or invalid configuration (CLI)
    KEYS = "keys"  # key file missing, damaged, or wrong passphrase (CLI)
    DATABASE = "database"  # database unreachable (CLI)
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an error code; the current password given to change it is wrong
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - an error code; after a reset: change it first
    BUSY = "busy"  # SQLite: another process held the write lock too long; retry (Retry-After)
    OIDC_REQUIRED = "oidc_required"  # passwords are not used here: sign-in is through OIDC only
    INTERNAL = "internal"


_STATUS: dict[Code, int] = {
    Code.MALFORMED: 400,
    Code.INVALID_INPUT: 422,
    Code.UNKNOWN_FIELD: 422,
    Code.INVALID_ENUM: 422,
    Code.TOO_LARGE: 413,
    Code.UNAUTHENTICATED: 401,
    Code.BAD_CREDENTIALS: 401,
    Code.THROTTLED: 429,
    Code.FORBIDDEN: 403,
    Code.CSRF_FAILED: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.CONFLICT: 409,
    Code.OVER_BUDGET: 409,
    Code.PLACEHOLDER_IDENTIFIER: 422,
    Code.IDENTIFIER_FORMAT: 422,
    Code.LEDGER_TAMPERED: 409,
    Code.MONTH_ALREADY_SENT: 409,
    Code.MONTH_NOT_FINISHED: 409,
    Code.TRANSFER_PENDING: 409,
    Code.ROSTER_UNREADABLE: 500,
    Code.CONFIG: 500,
    Code.KEYS: 500,
    Code.DATABASE: 503,
    Code.WRONG_PASSWORD: 403,
    Code.PASSWORD_CHANGE_REQUIRED: 403,
    Code.BUSY: 503,
    Code.OIDC_REQUIRED: 403,
    Code.INTERNAL: 500,
}

HTTP_STATUS: Mapping[Code, int] = MappingProxyType(_STATUS)


class NodeError(Exception):
    """A refusal or failure with a stable `code`, plain-words `message`, optional `field`."""

    def __init__(self, code: Code, message: str = "", field: str | None = None) -> None:
        self.code = Code(code)
        self.message = message or self.code.value.replace("_", " ")
        self.field = field
        super().__init__(f"{self.code.value}: {self.message}")

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return error_body(self.code.value, self.message, self.field)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The JSON error shape every peernet server answers with."""
    return {"error": {"code": code, "message": message, "field": field}}
