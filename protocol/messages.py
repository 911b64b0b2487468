"""Envelope-level message models: the message types, the outer envelope and the inner
message, the end-to-end ack, the registry of body models per type, batch forms and the
batch response.

The typed bodies live in `protocol.activation_bodies` (the activation thread between
agencies) and `protocol.hub_bodies` (what a node reports to the hub); shared field types and
the strict base model in `protocol.wire_types`, fixed choices in `protocol.vocabulary`.
Models validate plain JSON values and never feed a signature check (signatures are verified
over received bytes before any model is built, see `protocol.envelope`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from protocol.activation_bodies import (
    ActivationAcceptBody,
    ActivationCancelBody,
    ActivationDeclineBody,
    ActivationOfferBody,
    ActivationRequestBody,
    ActivationUpdateBody,
    FollowupHandoffBody,
)
from protocol.aggregate_bodies import (
    AggregateResultBody,
    AggregateRoundBody,
    AggregateShareBody,
)
from protocol.errors import Code
from protocol.hub_bodies import (
    MAX_BATCHED_STATUSES,
    ActivationStatusBody,
    ActivationStatusesBody,
    AggregateReleaseBody,
    AuditAnchorBody,
)
from protocol.ids import MsgId, NodeId
from protocol.transfer_bodies import (
    FollowupTransferBody,
    FollowupTransferReplyBody,
    FollowupTransferStatusBody,
)
from protocol.wire_types import (
    B64uText,
    RosterVersion,
    Sha256,
    Signature,
    Ts,
    Version1,
    WireEnum,
    WireModel,
)

__all__ = [
    "BATCH_FORMS",
    "BODY_MODELS",
    "AckBody",
    "AckStatus",
    "BatchForm",
    "BatchResponse",
    "BatchResult",
    "InnerMessage",
    "MessageType",
    "OuterEnvelope",
    "RosterRef",
]


# --- enumerations -------------------------------------------------------------------------


class MessageType(StrEnum):
    ACTIVATION_REQUEST = "activation_request"
    ACTIVATION_OFFER = "activation_offer"
    ACTIVATION_ACCEPT = "activation_accept"
    ACTIVATION_DECLINE = "activation_decline"
    ACTIVATION_UPDATE = "activation_update"
    ACTIVATION_CANCEL = "activation_cancel"
    FOLLOWUP_HANDOFF = "followup_handoff"
    ACK = "ack"
    ACTIVATION_STATUS = "activation_status"
    AGGREGATE_RELEASE = "aggregate_release"
    ACTIVATION_STATUSES = "activation_statuses"
    AUDIT_ANCHOR = "audit_anchor"
    AGGREGATE_SHARE = "aggregate_share"
    AGGREGATE_ROUND = "aggregate_round"
    AGGREGATE_RESULT = "aggregate_result"
    FOLLOWUP_TRANSFER = "followup_transfer"
    FOLLOWUP_TRANSFER_REPLY = "followup_transfer_reply"
    FOLLOWUP_TRANSFER_STATUS = "followup_transfer_status"


class AckStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


MessageTypeField = Annotated[MessageType, WireEnum(MessageType)]
AckStatusField = Annotated[AckStatus, WireEnum(AckStatus)]
CodeField = Annotated[Code, WireEnum(Code)]


# --- envelope layers ----------------------------------------------------------------------


class RosterRef(WireModel):
    """The roster an envelope was built under: its version and the SHA-256 (b64u) of the
    canonical bytes of `roster` (without `signatures`)."""

    version: RosterVersion
    sha256: Sha256


class OuterEnvelope(WireModel):
    """What the hub can read. `sig` (context `outer`) covers the canonical bytes of the
    envelope without `sig`; `ct_sha256` is over the raw ciphertext bytes."""

    v: Version1
    msg_id: MsgId
    from_: NodeId = Field(alias="from")
    to: NodeId
    created_ts: Ts
    expires_ts: Ts
    roster: RosterRef
    ct: B64uText
    ct_sha256: Sha256
    sig: Signature


class InnerMessage(WireModel):
    """The sealed layer. Its signature (context `inner`) is not a field: it is the 64 bytes
    before the inner bytes in the plaintext. `body` holds plain JSON values; the typed body
    is validated separately against `BODY_MODELS[type]`."""

    v: Version1
    type: MessageTypeField
    msg_id: MsgId
    from_: NodeId = Field(alias="from")
    to: NodeId
    created_ts: Ts
    expires_ts: Ts
    thread_id: MsgId | None
    in_reply_to: MsgId | None
    roster_version: RosterVersion
    body: dict[str, Any]



class AckBody(WireModel):
    """End-to-end acknowledgement of `msg_id`; `code` is set exactly when refused."""

    msg_id: MsgId
    status: AckStatusField
    code: CodeField | None

    @model_validator(mode="after")
    def _code(self) -> Self:
        if (self.status is AckStatus.REFUSED) != (self.code is not None):
            raise ValueError("code is required for refused and only for refused")
        return self


BODY_MODELS: dict[MessageType, type[WireModel]] = {
    MessageType.ACTIVATION_REQUEST: ActivationRequestBody,
    MessageType.ACTIVATION_OFFER: ActivationOfferBody,
    MessageType.ACTIVATION_ACCEPT: ActivationAcceptBody,
    MessageType.ACTIVATION_DECLINE: ActivationDeclineBody,
    MessageType.ACTIVATION_UPDATE: ActivationUpdateBody,
    MessageType.ACTIVATION_CANCEL: ActivationCancelBody,
    MessageType.FOLLOWUP_HANDOFF: FollowupHandoffBody,
    MessageType.ACK: AckBody,
    MessageType.ACTIVATION_STATUS: ActivationStatusBody,
    MessageType.AGGREGATE_RELEASE: AggregateReleaseBody,
    MessageType.ACTIVATION_STATUSES: ActivationStatusesBody,
    MessageType.AUDIT_ANCHOR: AuditAnchorBody,
    MessageType.AGGREGATE_SHARE: AggregateShareBody,
    MessageType.AGGREGATE_ROUND: AggregateRoundBody,
    MessageType.AGGREGATE_RESULT: AggregateResultBody,
    MessageType.FOLLOWUP_TRANSFER: FollowupTransferBody,
    MessageType.FOLLOWUP_TRANSFER_REPLY: FollowupTransferReplyBody,
    MessageType.FOLLOWUP_TRANSFER_STATUS: FollowupTransferStatusBody,
}

@dataclass(frozen=True)
class BatchForm:
    """How messages of one type to one destination may travel together as one message:
    its type, the body field holding the list, the most bodies per message, and which
    bodies may join (one the receiver would refuse must not take the others with it)."""

    batch_type: MessageType
    field: str
    most: int
    joins: Callable[[Mapping[str, Any], str], bool]


def _status_joins(body: Mapping[str, Any], sender: str) -> bool:
    # The hub refuses a report from a node that is not party to the activation.
    return sender in (body.get("requester"), body.get("responder"))


BATCH_FORMS: dict[MessageType, BatchForm] = {
    MessageType.ACTIVATION_STATUS: BatchForm(
        MessageType.ACTIVATION_STATUSES, "statuses", MAX_BATCHED_STATUSES, _status_joins
    ),
}


# --- batch response -----------------------------------------------------------------------


class BatchResult(WireModel):
    """Positional result for one envelope of a batch. `msg_id` is null when the envelope
    was too broken to read one; `code` is set exactly when refused."""

    msg_id: MsgId | None
    status: AckStatusField
    code: CodeField | None

    @model_validator(mode="after")
    def _code(self) -> Self:
        if (self.status is AckStatus.REFUSED) != (self.code is not None):
            raise ValueError("code is required for refused and only for refused")
        return self


class BatchResponse(WireModel):
    results: list[BatchResult]
