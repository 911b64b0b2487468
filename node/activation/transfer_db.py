"""Tables of the consented follow-up transfer (issue 21; revision branch `followup_transfers`).

- `followup_transfer_consents`: the responder's consent to move one follow-up to one named
  agency, recorded by a coordinator before anything is sent: who asked (`asked_by`) and when
  (`consented_at`). A transfer uses one consent (`used_at`); no consent, no transfer.
- `followup_transfers`: one row per transfer on each side. `out` rows (the sending node)
  point at the local follow-up; `in` rows (the receiving node) point at the `handoffs` row
  that holds the sealed contact note, so the note lives in the hand-off machinery only
  (ciphertext at rest, opened for the assigned coordinator, purged when completed). Neither
  side stores a pseudonym of the other node or anything typed about the person.

States: `pending` -> `accepted` | `declined` | `expired`. Times are integer milliseconds.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base, enum_column
from protocol.transfer_bodies import TransferDeclineReason
from protocol.vocabulary import Discipline, Intervention

__all__ = ["Transfer", "TransferConsent", "TransferDirection", "TransferState"]


class TransferDirection(StrEnum):
    OUT = "out"
    IN = "in"


class TransferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class TransferConsent(Base):
    __tablename__ = "followup_transfer_consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    follow_up_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("follow_ups.id", ondelete="CASCADE"), index=True
    )
    to_agency: Mapped[str] = mapped_column(String(63))
    asked_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    consented_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Transfer(Base):
    __tablename__ = "followup_transfers"
    __table_args__ = (
        UniqueConstraint("direction", "peer", "msg_id", name="uq_followup_transfers_msg"),
        Index("ix_followup_transfers_state_answer_by", "state", "answer_by"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    direction: Mapped[TransferDirection] = mapped_column(
        enum_column(TransferDirection, "transfer_direction")
    )
    peer: Mapped[str] = mapped_column(String(63))
    msg_id: Mapped[str] = mapped_column(String(26))
    follow_up_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("follow_ups.id", ondelete="CASCADE"), nullable=True, index=True
    )
    handoff_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=True
    )
    consent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("followup_transfer_consents.id"), nullable=True
    )
    intervention: Mapped[Intervention] = mapped_column(
        enum_column(Intervention, "transfer_intervention")
    )
    discipline: Mapped[Discipline] = mapped_column(enum_column(Discipline, "transfer_discipline"))
    due_on: Mapped[date] = mapped_column(Date)
    consent_ts: Mapped[int] = mapped_column(BigInteger)
    answer_by: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[TransferState] = mapped_column(enum_column(TransferState, "transfer_state"))
    reason: Mapped[TransferDeclineReason | None] = mapped_column(
        enum_column(TransferDeclineReason, "transfer_reason"), nullable=True
    )
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    decided_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
