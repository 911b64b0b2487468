"""The helper's exception root, its stable codes and the code -> HTTP table.

JSON errors: `{"error": {"code": "<stable_code>", "message": "<plain words>", "field": null}}`.
Refusals of federation messages travel as wire codes (`protocol.errors.Code`), not these.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["HTTP_STATUS", "Code", "HelperError"]


class Code(StrEnum):
    CONFIG = "config"
    KEYS = "keys"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TOO_LARGE = "too_large"
    INTERNAL = "internal"


HTTP_STATUS: Mapping[Code, int] = MappingProxyType(
    {
        Code.CONFIG: 500,
        Code.KEYS: 500,
        Code.UNAUTHENTICATED: 401,
        Code.NOT_FOUND: 404,
        Code.METHOD_NOT_ALLOWED: 405,
        Code.TOO_LARGE: 413,
        Code.INTERNAL: 500,
    }
)


class HelperError(Exception):
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
