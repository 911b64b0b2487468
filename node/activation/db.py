"""Tables of interagency activation and follow-up hand-off (revision branch `activations`).

One schema serves both sides of an activation:

- `activations`: one row per activation this node knows, `side = out` for the ones it
  requested and `side = in` for requests it received. The activation id is the ULID the
  requester chose (it travels as every message's `thread_id`); since any node could pick
  any id, rows are keyed by a local uuid and unique on `(requester, activation_id)`.
  `request` holds the wire JSON of the `activation_request` body exactly as sent or
  received (no names: the body schema has no place for one). `own_state` carries the steps
  that belong to the activation alone (`draft`, `requested`, `cancelled`, `closed`); what a
  page shows is `activation_states.summarize(own_state, legs)`.
- `activation_legs`: one row per requester-responder pair. The requester has one per target
  agency; the responder has exactly one (itself). Offers are counts by discipline.
- `activation_events`: the local history of every state change (leg or activation), for the
  timeline on the pages; metadata only. `note` says how a remote message was merged when
  it did not simply step (a step it implied, a stale message kept with no change, a
  message that arrived before its request); see `activation_states.merge`.
- `activation_early`: messages of a thread that arrived before the request that opens it
  (federation delivers exactly once, not in order: a cancel can overtake its request).
  Keyed by (peer, thread id); applied in lifecycle order in the transaction that stores
  the request, and swept once they are past their delivery window (`expires_ts`).
- `handoffs`: follow-up ownership moving between nodes. An incoming hand-off keeps its
  contact note only as SecretBox ciphertext under a node-held key (`note_ct`); the note is
  set to NULL (purged) when the follow-up is completed. An outgoing hand-off keeps no note.

Peer columns hold a bare node id or, for an agency of another network, its qualified
name `<network>/<node_id>` (`node.activation.interstate`, up to 95 characters).

Times are integer milliseconds. JSON columns are Text holding canonical JSON.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from node.activation.interstate import PEER_NAME_MAX
from node.core.db import Base, enum_column
from protocol.vocabulary import ActivationState, Discipline

__all__ = [
    "Activation",
    "ActivationEarly",
    "ActivationEvent",
    "ActivationLeg",
    "Handoff",
    "HandoffDirection",
    "HandoffStatus",
    "Side",
]


class Side(StrEnum):
    OUT = "out"  # we requested
    IN = "in"  # we were asked


class HandoffDirection(StrEnum):
    OUT = "out"
    IN = "in"


class HandoffStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Activation(Base):
    __tablename__ = "activations"
    __table_args__ = (
        UniqueConstraint("requester", "activation_id", name="uq_activations_requester_aid"),
        Index("ix_activations_side_created", "side", "created_at"),
    )

    key: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    activation_id: Mapped[str] = mapped_column(String(26))
    requester: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    side: Mapped[Side] = mapped_column(enum_column(Side, "activation_side"))
    own_state: Mapped[ActivationState] = mapped_column(
        enum_column(ActivationState, "activation_own_state")
    )
    request: Mapped[str] = mapped_column(Text)
    incident_ref: Mapped[str] = mapped_column(String(64))
    incident_type: Mapped[str] = mapped_column(String(32))
    event_ts: Mapped[int] = mapped_column(BigInteger)
    expires_ts: Mapped[int] = mapped_column(BigInteger, index=True)
    peers_needed: Mapped[int] = mapped_column(Integer)
    affected_total: Mapped[int] = mapped_column(Integer)
    # out: the coordinator who wrote the request; in: the coordinator handling it (or NULL).
    coordinator_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    cancel_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ActivationLeg(Base):
    __tablename__ = "activation_legs"
    __table_args__ = (
        UniqueConstraint("activation_key", "responder", name="uq_activation_legs_responder"),
        Index("ix_activation_legs_state", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    activation_key: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("activations.key", ondelete="CASCADE"), index=True
    )
    responder: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    state: Mapped[ActivationState] = mapped_column(
        enum_column(ActivationState, "activation_leg_state")
    )
    request_msg_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    offer_msg_id: Mapped[str | None] = mapped_column(String(26), nullable=True, index=True)
    offer: Mapped[str | None] = mapped_column(Text, nullable=True)
    offer_peers: Mapped[int] = mapped_column(Integer, default=0)
    offered_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    accept_msg_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    accepted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    declined_by: Mapped[str | None] = mapped_column(String(PEER_NAME_MAX), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(PEER_NAME_MAX), nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ActivationEvent(Base):
    __tablename__ = "activation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    activation_key: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("activations.key", ondelete="CASCADE"), index=True
    )
    responder: Mapped[str | None] = mapped_column(String(PEER_NAME_MAX), nullable=True)
    state: Mapped[ActivationState] = mapped_column(
        enum_column(ActivationState, "activation_event_state")
    )
    actor_node: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    msg_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ActivationEarly(Base):
    __tablename__ = "activation_early"
    __table_args__ = (
        UniqueConstraint("peer", "msg_id", name="uq_activation_early_peer_msg"),
        Index("ix_activation_early_peer_thread", "peer", "thread_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    peer: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    thread_id: Mapped[str] = mapped_column(String(26))
    msg_id: Mapped[str] = mapped_column(String(26))
    msg_type: Mapped[str] = mapped_column(String(32))
    created_ts: Mapped[int] = mapped_column(BigInteger)
    in_reply_to: Mapped[str | None] = mapped_column(String(26), nullable=True)
    body: Mapped[str] = mapped_column(Text)  # the wire JSON of the validated body
    received_at: Mapped[int] = mapped_column(BigInteger)
    expires_ts: Mapped[int] = mapped_column(BigInteger, index=True)


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        UniqueConstraint("peer", "msg_id", name="uq_handoffs_peer_msg"),
        Index("ix_handoffs_assigned_status", "assigned_to", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    activation_id: Mapped[str] = mapped_column(String(26), index=True)
    requester: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    direction: Mapped[HandoffDirection] = mapped_column(
        enum_column(HandoffDirection, "handoff_direction")
    )
    peer: Mapped[str] = mapped_column(String(PEER_NAME_MAX))
    msg_id: Mapped[str] = mapped_column(String(26))
    discipline: Mapped[Discipline] = mapped_column(enum_column(Discipline, "handoff_discipline"))
    due_on: Mapped[date] = mapped_column(Date)
    note_ct: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id"), nullable=True
    )
    status: Mapped[HandoffStatus] = mapped_column(enum_column(HandoffStatus, "handoff_status"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# The interstate approval tables live beside these (same revision family, own module).
import node.activation.approval_db  # noqa: E402,F401
