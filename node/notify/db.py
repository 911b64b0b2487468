"""Tables of notifications (revision branch `notify`).

- `notify_prefs`: one row per user who set preferences: the email address, the channels
  (`email`, `webhook`), a personal webhook URL and its `whsec_` secret, the daily digest
  switch for follow-up reminders, quiet hours (minutes after local midnight, node time
  zone) and whether an activation request may break them.
- `notify_endpoints`: the on-duty list an admin keeps: a shared mailbox or a paging / CAD
  webhook (URL plus its own `whsec_` secret), subscribed to event kinds.
- `notify_events`: one row per event (its key is what makes queueing idempotent: an
  inbound message id, or a follow-up's id, due date, stage and owner). It holds the kind
  and the node-relative path to open, never what the record says.
- `notify_deliveries`: one row per event x recipient x channel (unique: a delivery is
  never queued twice), with its state, attempts, next attempt time and the last error
  code. `batch` groups the rows one message carries (a digest); `held` says why a row
  waits (quiet hours, digest).

Times are integer milliseconds of the injected clock.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from node.core.db import Base, table_of

__all__ = ["NotifyDelivery", "NotifyEndpoint", "NotifyEvent", "NotifyPref", "D", "EP", "EV",
           "PR"]


class NotifyPref(Base):
    __tablename__ = "notify_prefs"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    channels: Mapped[str] = mapped_column(String(40), default="")
    webhook_url: Mapped[str | None] = mapped_column(String(400), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(80), nullable=True)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    quiet_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quiet_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    urgent_in_quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class NotifyEndpoint(Base):
    __tablename__ = "notify_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(400))
    secret: Mapped[str | None] = mapped_column(String(80), nullable=True)
    kinds: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class NotifyEvent(Base):
    __tablename__ = "notify_events"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    path: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)


class NotifyDelivery(Base):
    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("event_key", "recipient", "channel"),
        Index("ix_notify_deliveries_state_next_at", "state", "next_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_key: Mapped[str] = mapped_column(
        String(120), ForeignKey("notify_events.key", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    recipient: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[str | None] = mapped_column(String(120), nullable=True)
    held: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


PR = table_of(NotifyPref)
EP = table_of(NotifyEndpoint)
EV = table_of(NotifyEvent)
D = table_of(NotifyDelivery)
