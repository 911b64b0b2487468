"""Queueing notifications in the transaction of the event they are about.

The event code paths call one function here with the connection (or session) of their own
transaction: the event row and one delivery row per recipient and channel commit with the
business change or not at all (a refused inbound message rolls its savepoint back, and its
notification with it). Nothing is sent here; `node.notify.dispatch` sends later.

Idempotent by key: an event key already queued queues nothing more (the inbound message
id for activation messages and hand-offs, so a message is notified once however often it
is delivered; follow-up reminders are keyed by follow-up, due date, stage and owner).
Deliveries are unique per (event, recipient, channel).

Recipients are resolved now: the agency's active coordinators (activation events), the
assigned coordinator (a hand-off), the owner (follow-up reminders), each with the channels
of their preferences, plus every active on-duty endpoint subscribed to the kind.

An inbound activation message (`activation_message`) is on the federation hot path: it runs
inside the inbox's shared transaction once per message, so its lookups are one prebuilt
statement (`_ACTIVATION_TARGETS`: the coordinators and the endpoints, each row guarded by
"the activation is known here" and "this message was not queued before"); nobody to tell,
an unknown activation and a repeat all answer no rows, and nothing more is run. Otherwise
the event row and its deliveries are two more (issue 16: four unprepared lookups per message
cost about 2 ms on the requester and 5 ms on a responder, inside the inbox transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    exists,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from federation.prepared import Prepared
from node.activation.db import Activation
from node.core.db import User, table_of
from node.core.vocabulary import Role
from node.notify.db import EP, EV, PR, D
from node.notify.kinds import DeliveryState, NotifyChannel, NotifyKind

__all__ = ["activation_message", "enqueue", "follow_up_closed", "follow_up_reminder",
           "handoff_arrived"]

Db = AsyncConnection | AsyncSession
U = table_of(User)
ACT = table_of(Activation)

_BY_MESSAGE = {
    "activation_request": NotifyKind.ACTIVATION_REQUEST,
    "activation_accept": NotifyKind.OFFER_ACCEPTED,
    "activation_offer": NotifyKind.ACTIVATION_UPDATE,
    "activation_update": NotifyKind.ACTIVATION_UPDATE,
    "activation_decline": NotifyKind.ACTIVATION_UPDATE,
    "activation_cancel": NotifyKind.ACTIVATION_UPDATE,
}


_KNOWN = exists().where(ACT.c.activation_id == bindparam("aid"))
_FRESH = ~exists().where(EV.c.key == bindparam("key"))
# The recipients of an inbound activation message, or no rows when there is nothing to queue
# (module docstring): tag 'u' (a coordinator: channels, email, webhook) or 'e' (an endpoint).
_ACTIVATION_TARGETS = Prepared(union_all(
    select(literal_column("'u'", String).label("tag"), PR.c.user_id.label("who"),
           PR.c.channels.label("channels"), PR.c.email.label("email"),
           PR.c.webhook_url.label("webhook_url"), null().label("kinds"))
    .join(U, U.c.id == PR.c.user_id)
    .where(U.c.active.is_(True), U.c.role == Role.COORDINATOR.value, _KNOWN, _FRESH),
    select(literal_column("'e'", String), EP.c.id, EP.c.channel, null(), null(), EP.c.kinds)
    .where(EP.c.active.is_(True), _KNOWN, _FRESH),
))
_INSERT_EVENT = Prepared(insert(EV))
_INSERT_DELIVERIES = Prepared(insert(D))


def _channels(text: str) -> list[NotifyChannel]:
    return [NotifyChannel(c) for c in text.split(",") if c]


async def _user_targets(db: Db, users: Sequence[uuid.UUID] | None
                        ) -> list[tuple[str, NotifyChannel]]:
    q = (select(PR.c.user_id, PR.c.channels, PR.c.email, PR.c.webhook_url)
         .join(U, U.c.id == PR.c.user_id).where(U.c.active.is_(True)))
    if users is None:
        q = q.where(U.c.role == Role.COORDINATOR.value)
    else:
        q = q.where(U.c.id.in_(list(users)))
    out = []
    for r in (await db.execute(q)).all():
        for ch in _channels(r.channels):
            if ((ch is NotifyChannel.EMAIL and r.email)
                    or (ch is NotifyChannel.WEBHOOK and r.webhook_url)):
                out.append((f"user:{r.user_id}", ch))
    return out


async def _endpoint_targets(db: Db, kind: NotifyKind) -> list[tuple[str, NotifyChannel]]:
    rows = (await db.execute(
        select(EP.c.id, EP.c.channel, EP.c.kinds).where(EP.c.active.is_(True)))).all()
    return [(f"endpoint:{r.id}", NotifyChannel(r.channel)) for r in rows
            if kind.value in r.kinds.split(",")]


async def enqueue(db: Db, now: int, kind: NotifyKind, key: str, path: str, *,
                  users: Sequence[uuid.UUID] | None = None, subject: str | None = None,
                  keep_empty: bool = True) -> int:
    """Queue `kind` for its recipients (`users`: None means every active coordinator);
    answers how many deliveries were queued (0 when `key` was queued before). With
    `keep_empty=False` an event nobody is to hear of leaves no row (a message id never
    comes twice; the reminder scan needs the row to know it looked)."""
    if (await db.execute(select(EV.c.key).where(EV.c.key == key))).first() is not None:
        return 0
    targets = await _user_targets(db, users) + await _endpoint_targets(db, kind)
    if not targets and not keep_empty:
        return 0
    return await _queue(db, now, kind, key, path, targets, subject)


async def _queue(db: Db, now: int, kind: NotifyKind, key: str, path: str,
                 targets: list[tuple[str, NotifyChannel]], subject: str | None) -> int:
    """The event row and one delivery per distinct (recipient, channel)."""
    await _INSERT_EVENT.run(db, {"key": key, "kind": kind.value, "path": path,
                                 "created_at": now})
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "event_key": key, "kind": kind.value, "subject": subject,
         "recipient": who, "channel": ch.value, "state": DeliveryState.PENDING.value, "attempts": 0,
         "next_at": now, "batch": None, "held": None, "last_error": None, "created_at": now,
         "sent_at": None}
        for who, ch in dict.fromkeys(targets)
    ]
    if rows:
        await _INSERT_DELIVERIES.run(db, rows if len(rows) > 1 else rows[0])
    return len(rows)


async def activation_message(db: Db, now: int, msg_type: str, msg_id: str,
                             activation_id: str) -> None:
    """An inbound activation message was applied (inside the inbox transaction)."""
    kind = _BY_MESSAGE.get(msg_type)
    if kind is None:
        return
    # An unknown activation (an early cancel, kept until its request arrives), a message
    # queued before, or nobody to tell: no rows, nothing written.
    key = f"msg:{msg_id}"
    rows = (await _ACTIVATION_TARGETS.run(db, {"aid": activation_id, "key": key})).all()
    targets: list[tuple[str, NotifyChannel]] = []
    for r in sorted(rows, key=lambda r: r.tag != "u"):  # coordinators first, as `enqueue`
        if r.tag == "e":
            if kind.value in r.kinds.split(","):
                targets.append((f"endpoint:{r.who}", NotifyChannel(r.channels)))
            continue
        for ch in _channels(r.channels):
            if ((ch is NotifyChannel.EMAIL and r.email)
                    or (ch is NotifyChannel.WEBHOOK and r.webhook_url)):
                targets.append((f"user:{r.who}", ch))
    if targets:
        await _queue(db, now, kind, key, f"/activations/{activation_id}", targets, None)


async def handoff_arrived(db: Db, now: int, msg_id: str, assignee: uuid.UUID | None,
                          path: str = "/activations/handoffs") -> None:
    """A follow-up was handed to this agency (after an activation, or by consented
    transfer: `path` "/transfers"); its assigned coordinator hears of it."""
    await enqueue(db, now, NotifyKind.HANDOFF_RECEIVED, f"msg:{msg_id}", path,
                  users=[assignee] if assignee is not None else None, keep_empty=False)


async def follow_up_reminder(db: Db, now: int, kind: NotifyKind, follow_up: uuid.UUID, due: date,
                             owner: uuid.UUID) -> int:
    key = f"fu:{follow_up}:{due.isoformat()}:{kind.value}:{owner}"
    return await enqueue(db, now, kind, key, "/follow-ups", users=[owner],
                         subject=str(follow_up))


async def follow_up_closed(db: Db, follow_up: uuid.UUID) -> None:
    """A follow-up was completed or reassigned: its reminders not yet sent are dropped (a
    reassigned one is reminded to the new owner by the next scan)."""
    await db.execute(
        update(D).where(D.c.subject == str(follow_up),
                        D.c.state.in_([DeliveryState.PENDING.value, DeliveryState.FAILING.value]))
        .values(state=DeliveryState.CANCELLED.value, last_error="closed"))
