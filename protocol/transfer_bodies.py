"""Bodies of a consented follow-up transfer between member agencies, outside any activation
(issue 21: a responder moves from one agency to another in the middle of follow-up).

`followup_transfer` (sending node -> receiving node) carries only what the receiving team
needs: the type of support (`intervention`), the due date, the discipline, the bounded
contact note of the hand-off (`ContactNote`: at most 140 characters of a narrow alphabet,
callback details only), when the responder's consent was recorded (`consent_ts`; who asked
stays on the sending node) and the time by which an answer is due (`answer_by_ts`). The
transfer's `msg_id` is its id and the `thread_id` of the reply. There is no field for the
sending node's `recipient_ref` or for the typed identifier: pseudonyms stay per node, the
receiving node derives its own when its supporter next logs an encounter.

`followup_transfer_reply` (receiving -> sending) names the transfer and says `accepted` or
`declined` with a reason from a fixed list (`reason` is null exactly when accepted).

`followup_transfer_status` (sending node -> hub) is the activation-style metadata the hub's
central log keeps: that a transfer happened, between which agencies, when.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import field_validator, model_validator

from protocol.ids import MsgId, NodeId
from protocol.vocabulary import DisciplineField, InterventionField
from protocol.wire_types import ContactNote, DateStr, Ts, WireEnum, WireModel

__all__ = [
    "FollowupTransferBody",
    "FollowupTransferReplyBody",
    "FollowupTransferStatusBody",
    "TransferDeclineReason",
    "TransferDeclineReasonField",
    "TransferOutcome",
    "TransferOutcomeField",
]


class TransferOutcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class TransferDeclineReason(StrEnum):
    """Why a receiving coordinator declines (fixed choices, never free text)."""

    NOT_A_MEMBER = "not_a_member"  # the person is not with this agency
    NO_CAPACITY = "no_capacity"
    OUTSIDE_DISCIPLINE = "outside_discipline"
    ALREADY_SUPPORTED = "already_supported"
    POLICY = "policy"
    OTHER = "other"


TransferOutcomeField = Annotated[TransferOutcome, WireEnum(TransferOutcome)]
TransferDeclineReasonField = Annotated[TransferDeclineReason, WireEnum(TransferDeclineReason)]


class FollowupTransferBody(WireModel):
    intervention: InterventionField
    due: DateStr
    discipline: DisciplineField
    contact_note: ContactNote
    consent_ts: Ts
    answer_by_ts: Ts

    @field_validator("due")
    @classmethod
    def _real_date(cls, value: str) -> str:
        datetime.date.fromisoformat(value)  # ValueError for 2025-02-30
        return value

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.answer_by_ts < self.consent_ts:
            raise ValueError("the answer is due before consent was recorded")
        return self


class FollowupTransferReplyBody(WireModel):
    transfer_id: MsgId
    outcome: TransferOutcomeField
    reason: TransferDeclineReasonField | None

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.outcome is TransferOutcome.DECLINED) != (self.reason is not None):
            raise ValueError("a reason goes with declined and only with declined")
        return self


class FollowupTransferStatusBody(WireModel):
    """Metadata only, for the hub's central log: reported by the sending agency when the
    receiving agency accepted."""

    transfer_id: MsgId
    sender: NodeId
    receiver: NodeId
    ts: Ts

    @model_validator(mode="after")
    def _two(self) -> Self:
        if self.sender == self.receiver:
            raise ValueError("a transfer is between two agencies")
        return self
