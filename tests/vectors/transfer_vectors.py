"""Sample bodies and routes of the follow-up transfer messages (issue 21, WIRE section 15)
for the golden vectors; their envelope cases come after every earlier type's, so the
published bytes of the other vectors do not change."""

from __future__ import annotations

from typing import Any

from protocol.ids import new_ulid
from protocol.messages import MessageType

__all__ = ["TRANSFER_ROUTES", "TRANSFER_TYPES", "transfer_bodies"]

_T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_DAY = 86_400_000
_TRANSFER_ID = new_ulid(_T0, bytes(10))

TRANSFER_TYPES = (
    MessageType.FOLLOWUP_TRANSFER,
    MessageType.FOLLOWUP_TRANSFER_REPLY,
    MessageType.FOLLOWUP_TRANSFER_STATUS,
)

TRANSFER_ROUTES: dict[MessageType, tuple[str, str]] = {
    MessageType.FOLLOWUP_TRANSFER: ("agency-a", "agency-b"),
    MessageType.FOLLOWUP_TRANSFER_REPLY: ("agency-b", "agency-a"),
    MessageType.FOLLOWUP_TRANSFER_STATUS: ("agency-a", "hub-east"),
}


def transfer_bodies() -> dict[MessageType, dict[str, Any]]:
    return {
        MessageType.FOLLOWUP_TRANSFER: {
            "intervention": "one_on_one",
            "due": "2026-01-20",
            "discipline": "fire",
            "contact_note": "Prefers calls after 18:00 via the station line",
            "consent_ts": _T0 - _DAY,
            "answer_by_ts": _T0 + 7 * _DAY,
        },
        MessageType.FOLLOWUP_TRANSFER_REPLY: {
            "transfer_id": _TRANSFER_ID, "outcome": "declined", "reason": "no_capacity",
        },
        MessageType.FOLLOWUP_TRANSFER_STATUS: {
            "transfer_id": _TRANSFER_ID, "sender": "agency-a", "receiver": "agency-b",
            "ts": _T0 + _DAY,
        },
    }
