"""Follow-up hand-off after demobilization (DESIGN section 6: `followup_handoff`).

When visiting peers leave, the follow-ups they started must not be dropped: ownership moves
to the other agency of the activation (usually the requester, whose people were
supported). The message carries a due date, a discipline and a *minimal* contact note (at
most 280 characters, e.g. "call back re: shift change, ask for B-shift captain"), sealed
end to end like every inner message.

At rest on the receiving node the note exists only as SecretBox ciphertext under the
node-held note key (`activation_context.derive_note_key`): never in plaintext in the
database file, its WAL or a backup of it. The hand-off is assigned to one coordinator (the
coordinator of the activation on this node, else the first active coordinator); only that
coordinator sees the note, and completing the follow-up purges the ciphertext (the row
keeps only metadata: who, when, done). The sending node keeps no copy of the note.

A hand-off is allowed only on a leg that is `demobilized` or `closed`, between the two
parties of that leg. Inbound, a responder's hand-off that overtook its `demobilized` update
implies it (`activation_inbound.settle_for_handoff`).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, cast

import nacl.exceptions
import nacl.secret
import nacl.utils
from sqlalchemy import Table, insert, select, update

from node.activation.context import ActivationContext, Db
from node.activation.db import Handoff, HandoffDirection, HandoffStatus, Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.inbound import Inbound, settle_for_handoff
from node.activation.models import HandoffIn, HandoffOut
from node.activation.rows import ActRow, LegRow, find, legs_of, load, wire_body
from node.core.db import User, table_of
from node.core.vocabulary import Role
from node.notify import queue as notify_queue
from protocol.activation_bodies import FollowupHandoffBody
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState
from protocol.wire_types import wire_json

__all__ = [
    "apply_handoff",
    "complete",
    "handoff_inbox",
    "open_note",
    "seal_note",
    "send_handoff",
]

H = cast(Table, Handoff.__table__)
_users = table_of(User)
_AFTER_DEMOB = frozenset({ActivationState.DEMOBILIZED, ActivationState.CLOSED})


def seal_note(key: bytes, note: str) -> bytes:
    return bytes(nacl.secret.SecretBox(key).encrypt(note.encode("utf-8")))


def open_note(key: bytes, ct: bytes) -> str:
    try:
        return nacl.secret.SecretBox(key).decrypt(ct).decode("utf-8")
    except (nacl.exceptions.CryptoError, UnicodeDecodeError):
        raise ActivationError(ActivationCode.CONFLICT, "the note cannot be opened") from None


def _leg_between(act: ActRow, legs: list[LegRow], me: str, peer: str) -> LegRow | None:
    if act.side is Side.OUT:
        return next((x for x in legs if x.responder == peer), None)
    if act.requester != peer:
        return None
    return next((x for x in legs if x.responder == me), None)


async def send_handoff(
    db: Db, ctx: ActivationContext, activation_id: str, data: HandoffIn, *,
    requester: str | None = None,
) -> HandoffOut:
    """Hand a follow-up to the other agency of a demobilized leg."""
    act = await find(db, activation_id, requester)
    leg = _leg_between(act, await legs_of(db, act.key), ctx.node_id, data.to)
    if leg is None:
        raise ActivationError(
            ActivationCode.NOT_A_PARTY, f"{data.to} is not the other agency here", "to"
        )
    if leg.state not in _AFTER_DEMOB:
        raise ActivationError(
            ActivationCode.ILLEGAL_TRANSITION,
            f"follow-ups are handed off after demobilization (state {leg.state.value})", "state",
        )
    try:
        due = datetime.date.fromisoformat(data.due)
    except ValueError:
        raise ActivationError(ActivationCode.INVALID_INPUT, "not a real date", "due") from None
    body = wire_body(FollowupHandoffBody, {
        "activation_id": act.activation_id, "due": data.due,
        "contact_note": data.contact_note, "discipline": data.discipline.value,
    })
    msg_id = await ctx.send(
        db, data.to, MessageType.FOLLOWUP_HANDOFF, wire_json(body),
        thread_id=act.activation_id,
    )
    hid = uuid.uuid4()
    now = ctx.now()
    await db.execute(
        insert(H).values(
            id=hid, activation_id=act.activation_id, requester=act.requester,
            direction=HandoffDirection.OUT.value, peer=data.to, msg_id=msg_id,
            discipline=data.discipline.value, due_on=due, note_ct=None, assigned_to=None,
            status=HandoffStatus.OPEN.value, created_at=now, completed_at=None,
        )
    )
    return _out((await db.execute(select(H).where(H.c.id == hid))).one(), None)


async def _default_coordinator(db: Db, act: ActRow) -> uuid.UUID | None:
    if act.coordinator_id is not None:
        return act.coordinator_id
    row = (
        await db.execute(
            select(_users.c.id)
            .where(_users.c.role == Role.COORDINATOR.value, _users.c.active.is_(True))
            .order_by(_users.c.created_at, _users.c.username)
            .limit(1)
        )
    ).first()
    return row.id if row else None


async def apply_handoff(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """Store an inbound hand-off; the note only as ciphertext under the node's note key."""
    body: FollowupHandoffBody = m.body
    if m.thread_id is not None and m.thread_id != body.activation_id:
        raise ActivationError(ActivationCode.INVALID_INPUT, "thread and activation differ")
    act = await load(db, ctx.node_id, body.activation_id)
    if act is None:
        act = await load(db, m.sender, body.activation_id)
    if act is None:
        raise ActivationError(ActivationCode.NOT_A_PARTY, "no such activation", "activation_id")
    leg = _leg_between(act, await legs_of(db, act.key), ctx.node_id, m.sender)
    if leg is None:
        raise ActivationError(ActivationCode.NOT_A_PARTY, "the sender is not a party")
    await settle_for_handoff(db, ctx, act, leg, m)  # may overtake `demobilized`
    assignee = await _default_coordinator(db, act)
    await db.execute(
        insert(H).values(
            id=uuid.uuid4(), activation_id=act.activation_id, requester=act.requester,
            direction=HandoffDirection.IN.value, peer=m.sender, msg_id=m.msg_id,
            discipline=body.discipline.value, due_on=datetime.date.fromisoformat(body.due),
            note_ct=seal_note(ctx.note_key, body.contact_note),
            assigned_to=assignee,
            status=HandoffStatus.OPEN.value, created_at=ctx.now(), completed_at=None,
        )
    )
    await notify_queue.handoff_arrived(db, ctx.now(), m.msg_id, assignee)


def _out(row: Any, note: str | None) -> HandoffOut:
    return HandoffOut(
        id=str(row.id), activation_id=row.activation_id, requester=row.requester,
        direction=row.direction, peer=row.peer, discipline=row.discipline,
        due=row.due_on.isoformat(), status=row.status,
        assigned_to=str(row.assigned_to) if row.assigned_to else None, contact_note=note,
        created_at=row.created_at, completed_at=row.completed_at,
    )


async def handoff_inbox(
    db: Db, ctx: ActivationContext, user_id: uuid.UUID, *, include_done: bool = False
) -> list[HandoffOut]:
    """Hand-offs of this node. Notes are opened only for the assigned coordinator, only
    while open; everyone else (and outgoing rows) sees metadata."""
    q = select(H).order_by(H.c.due_on, H.c.created_at)
    if not include_done:
        q = q.where(H.c.status == HandoffStatus.OPEN.value)
    out = []
    for row in (await db.execute(q)).all():
        note = None
        if row.assigned_to == user_id and row.note_ct is not None:
            note = open_note(ctx.note_key, row.note_ct)
        out.append(_out(row, note))
    return out


async def _own_open(db: Db, handoff_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    row = (await db.execute(select(H).where(H.c.id == handoff_id))).first()
    if row is None or row.direction != HandoffDirection.IN.value:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such hand-off", "id")
    if row.assigned_to != user_id:
        raise ActivationError(
            ActivationCode.FORBIDDEN, "only the assigned coordinator can do this", "id"
        )
    if row.status != HandoffStatus.OPEN.value:
        raise ActivationError(ActivationCode.CONFLICT, "this follow-up is already done", "id")
    return row


async def complete(
    db: Db, ctx: ActivationContext, handoff_id: uuid.UUID, user_id: uuid.UUID
) -> HandoffOut:
    """Mark a received follow-up done and purge its note."""
    await _own_open(db, handoff_id, user_id)
    await db.execute(
        update(H).where(H.c.id == handoff_id).values(
            status=HandoffStatus.DONE.value, note_ct=None, completed_at=ctx.now()
        )
    )
    return _out((await db.execute(select(H).where(H.c.id == handoff_id))).one(), None)


async def reassign(
    db: Db, handoff_id: uuid.UUID, user_id: uuid.UUID, to_user: uuid.UUID
) -> None:
    """The assigned coordinator passes the follow-up to another active coordinator."""
    await _own_open(db, handoff_id, user_id)
    ok = (
        await db.execute(
            select(_users.c.id).where(
                _users.c.id == to_user, _users.c.role == Role.COORDINATOR.value,
                _users.c.active.is_(True),
            )
        )
    ).first()
    if ok is None:
        raise ActivationError(
            ActivationCode.INVALID_INPUT, "not an active coordinator", "assigned_to"
        )
    await db.execute(update(H).where(H.c.id == handoff_id).values(assigned_to=to_user))
