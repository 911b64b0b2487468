"""The hub's exception root, its stable codes and the code -> HTTP table.

JSON errors: `{"error": {"code": "<stable_code>", "message": "<plain words>", "field": null}}`.
Federation errors reaching a hub route are wrapped by the error middleware with their own
stable code (see `federation.errors.HTTP_STATUS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["HTTP_STATUS", "Code", "HubError"]


class Code(StrEnum):
    CONFIG = "config"
    KEYS = "keys"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INVALID_INPUT = "invalid_input"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    INTERNAL = "internal"
    # hub users and pages (hub.users.accounts)
    BAD_CREDENTIALS = "bad_credentials"
    CSRF_FAILED = "csrf_failed"
    THROTTLED = "throttled"
    CONFLICT = "conflict"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an error code; the current password given to change it is wrong
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # noqa: S105 - an error code; after a reset: change it first
    OIDC_REQUIRED = "oidc_required"  # passwords are not used here: sign-in is through OIDC only


HTTP_STATUS: Mapping[Code, int] = MappingProxyType(
    {
        Code.CONFIG: 500,
        Code.KEYS: 500,
        Code.UNAUTHENTICATED: 401,
        Code.FORBIDDEN: 403,
        Code.NOT_FOUND: 404,
        Code.INVALID_INPUT: 400,
        Code.METHOD_NOT_ALLOWED: 405,
        Code.TOO_LARGE: 413,
        Code.INTERNAL: 500,
        Code.BAD_CREDENTIALS: 401,
        Code.CSRF_FAILED: 403,
        Code.THROTTLED: 429,
        Code.CONFLICT: 409,
        Code.WRONG_PASSWORD: 403,
        Code.PASSWORD_CHANGE_REQUIRED: 403,
        Code.OIDC_REQUIRED: 403,
    }
)


class HubError(Exception):
    def __init__(self, code: Code, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = Code(code)
        self.message = message
        self.field = field

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code.value, "message": self.message, "field": self.field}}
