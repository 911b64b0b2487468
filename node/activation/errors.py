"""Refusals of the activation services, as `NodeError`s with activation-specific codes.

The node's exception root is `node.core.errors.NodeError`; the codes below extend it for this
feature without touching the node's own table (they are a contract too: never renamed).
`ActivationError` keeps the `NodeError` interface (`code`, `message`, `field`, `status`,
`body()`), so the node's error middleware renders it like any other refusal:

    {"error": {"code": "illegal_transition", "message": "...", "field": null}}

Codes of the node's own table (`not_found`, `forbidden`, `invalid_input`, `conflict`) are
reused as they are. Inbound federation messages refused by these rules are answered with
the wire code `bad_body` (the ack can only carry wire codes); the specific code is kept
in `detail` for logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from node.core.errors import Code as NodeCode
from node.core.errors import NodeError, error_body

__all__ = ["HTTP_STATUS", "ActivationCode", "ActivationError"]


class ActivationCode(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"  # the event does not apply in this state
    TERMINAL_STATE = "terminal_state"  # the activation (or leg) is over
    EXPIRED = "request_expired"  # the request's expiry has passed
    BAD_TARGET = "bad_target"  # not an agency in the roster, ourselves, or not allowed
    UNKNOWN_OFFER = "unknown_offer"  # no offer with that msg_id in this activation
    NOT_A_PARTY = "not_a_party"  # a message from a node outside this activation
    WRONG_SIDE = "wrong_side"  # a requester's action on a received request, or the reverse
    NO_CONSENT = "no_consent"  # a transfer without the responder's recorded consent
    UNKNOWN_AGENCY = "unknown_agency"  # a transfer to no member agency of the roster
    REVOKED_AGENCY = "revoked_agency"  # a transfer to an agency whose keys are revoked
    DUPLICATE_TRANSFER = "duplicate_transfer"  # this follow-up already has one pending
    TRANSFER_EXPIRED = "transfer_expired"  # the answer was due before now
    APPROVAL_REQUIRED = "approval_required"  # interstate: waiting for an approver (approval)
    UNKNOWN_NETWORK = "unknown_network"  # interstate: no compact lists this network
    NETWORK_NOT_IN_COMPACT = "network_not_in_compact"  # listed before, not any more
    FOREIGN_ROSTER_INVALID = "foreign_roster_invalid"  # no verified roster of it held
    NOT_FOUND = NodeCode.NOT_FOUND.value
    FORBIDDEN = NodeCode.FORBIDDEN.value
    INVALID_INPUT = NodeCode.INVALID_INPUT.value
    CONFLICT = NodeCode.CONFLICT.value


HTTP_STATUS: Mapping[ActivationCode, int] = MappingProxyType(
    {
        ActivationCode.ILLEGAL_TRANSITION: 409,
        ActivationCode.TERMINAL_STATE: 409,
        ActivationCode.EXPIRED: 409,
        ActivationCode.BAD_TARGET: 422,
        ActivationCode.UNKNOWN_OFFER: 404,
        ActivationCode.NOT_A_PARTY: 403,
        ActivationCode.WRONG_SIDE: 409,
        ActivationCode.NO_CONSENT: 409,
        ActivationCode.UNKNOWN_AGENCY: 422,
        ActivationCode.REVOKED_AGENCY: 422,
        ActivationCode.DUPLICATE_TRANSFER: 409,
        ActivationCode.TRANSFER_EXPIRED: 409,
        ActivationCode.APPROVAL_REQUIRED: 409,
        ActivationCode.UNKNOWN_NETWORK: 404,
        ActivationCode.NETWORK_NOT_IN_COMPACT: 403,
        ActivationCode.FOREIGN_ROSTER_INVALID: 409,
        ActivationCode.NOT_FOUND: 404,
        ActivationCode.FORBIDDEN: 403,
        ActivationCode.INVALID_INPUT: 422,
        ActivationCode.CONFLICT: 409,
    }
)

_AS_NODE = {
    c.value: NodeCode(c.value) for c in ActivationCode if c.value in NodeCode._value2member_map_
}


class ActivationError(NodeError):
    """A refusal of the activation services with a stable `ActivationCode`."""

    def __init__(self, code: ActivationCode, message: str = "", field: str | None = None) -> None:
        # NodeError only knows its own codes: initialise it with the nearest one, then
        # carry the activation code (same interface, own table).
        super().__init__(_AS_NODE.get(code.value, NodeCode.CONFLICT), message, field)
        self.code = code  # type: ignore[assignment]  # an ActivationCode, a str like Code
        self.message = message or code.value.replace("_", " ")
        self.args = (f"{code.value}: {self.message}",)

    @property
    def status(self) -> int:
        return HTTP_STATUS[ActivationCode(self.code)]

    def body(self) -> dict[str, Any]:
        return error_body(str(self.code), self.message, self.field)
