"""Refusals of the notification room, as `NodeError`s with notification codes.

As in `node.activation.errors`: the node's exception root with codes of this room (a
contract: never renamed) and their HTTP statuses, so the node's error middleware renders
them as `{"error": {"code", "message", "field"}}`. Codes of the node's own table are reused
as they are.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from node.core.errors import Code as NodeCode
from node.core.errors import NodeError, error_body

__all__ = ["HTTP_STATUS", "NotifyCode", "NotifyError"]


class NotifyCode(StrEnum):
    BAD_WEBHOOK_URL = "bad_webhook_url"  # not https (or http to loopback in test/dev config)
    BAD_EMAIL = "bad_email"  # not a plain mailbox address
    NOT_FOUND = NodeCode.NOT_FOUND.value
    INVALID_INPUT = NodeCode.INVALID_INPUT.value
    CONFLICT = NodeCode.CONFLICT.value


HTTP_STATUS: dict[NotifyCode, int] = {
    NotifyCode.BAD_WEBHOOK_URL: 422,
    NotifyCode.BAD_EMAIL: 422,
    NotifyCode.NOT_FOUND: 404,
    NotifyCode.INVALID_INPUT: 422,
    NotifyCode.CONFLICT: 409,
}


class NotifyError(NodeError):
    def __init__(self, code: NotifyCode, message: str = "", field: str | None = None) -> None:
        near = NodeCode(code.value) if code.value in NodeCode._value2member_map_ else (
            NodeCode.INVALID_INPUT)
        super().__init__(near, message, field)
        self.code = code  # type: ignore[assignment]  # a NotifyCode, a str like Code
        self.message = message or code.value.replace("_", " ")
        self.args = (f"{code.value}: {self.message}",)

    @property
    def status(self) -> int:
        return HTTP_STATUS[NotifyCode(self.code)]

    def body(self) -> dict[str, Any]:
        return error_body(str(self.code), self.message, self.field)
