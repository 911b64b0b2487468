"""Consented transfer of an open follow-up to another member agency, outside any activation
(issue 21). The services of both sides; the web layer adds roles, CSRF and audit.

Sending side: a coordinator of the follow-up's team records the responder's consent for one
named agency (`record_consent`: who asked, when), then sends (`send_transfer`): no unused
consent for that agency is `no_consent`; an agency not in the roster (or ourselves, or a
hub) is `unknown_agency`; one whose signing keys are all revoked is `revoked_agency`; a
follow-up with a transfer still pending is `duplicate_transfer`. One sealed
`followup_transfer` carries type of support, due date, discipline, the bounded contact note,
when consent was recorded and when the answer is due (`TRANSFER_TTL_MS` later). Never the
node's `recipient_ref` or anything typed: the body has no such field.

Receiving side (`apply_transfer`): the note goes into the hand-off machinery (`handoff`:
a `handoffs` row, SecretBox ciphertext under the note key, assigned to one coordinator,
purged when completed) and a `followup_transfers` row points at it. The assigned
coordinator accepts (an owner on their team) or declines with a fixed reason
(`answer`); a decline purges the note at once. After `answer_by` nothing can be answered
(`transfer_expired`); the sweep (`expire_transfers`) marks both sides expired and purges.

The reply (`apply_reply`) closes the sending follow-up as `transferred` only on acceptance,
and only then reports to the hub: transfer id, the two agencies, when.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from node.activation import handoff
from node.activation.context import ActivationContext, Db
from node.activation.db import Handoff, HandoffDirection, HandoffStatus
from node.activation.errors import ActivationCode, ActivationError
from node.activation.inbound import Inbound
from node.activation.rows import wire_body
from node.activation.transfer_db import (
    Transfer,
    TransferConsent,
    TransferDirection,
    TransferState,
)
from node.activation.transfer_models import ConsentOut, TransferIn, TransferOut
from node.core.db import Encounter, FollowUp, User, table_of
from node.core.vocabulary import FollowUpStatus, Role
from node.notify import queue as notify_queue
from protocol.messages import MessageType
from protocol.transfer_bodies import (
    FollowupTransferBody,
    FollowupTransferReplyBody,
    FollowupTransferStatusBody,
    TransferDeclineReason,
    TransferOutcome,
)
from protocol.wire_types import wire_json

__all__ = [
    "TRANSFER_TTL_MS",
    "answer",
    "apply_reply",
    "apply_transfer",
    "expire_transfers",
    "list_transfers",
    "owned_transfers",
    "record_consent",
    "send_transfer",
]

TRANSFER_TTL_MS = 7 * 86_400_000  # a week to answer
T = cast(Table, Transfer.__table__)
C = cast(Table, TransferConsent.__table__)
H = cast(Table, Handoff.__table__)
F = table_of(FollowUp)
E = table_of(Encounter)
U = table_of(User)
_ASSIGNABLE = (Role.PEER_SUPPORTER.value, Role.COORDINATOR.value)


def _err(code: ActivationCode, message: str, field: str | None = None) -> ActivationError:
    return ActivationError(code, message, field)


async def _follow_up(db: Db, fid: uuid.UUID, team: str) -> Any:
    row = (await db.execute(
        select(F.c.id, F.c.status, F.c.due_on, E.c.intervention, E.c.recipient_discipline,
               U.c.team)
        .select_from(F.join(E, E.c.id == F.c.encounter_id).join(U, U.c.id == F.c.owner_id))
        .where(F.c.id == fid)
    )).first()
    if row is None:
        raise _err(ActivationCode.NOT_FOUND, "no such follow-up", "id")
    if row.team != team:
        raise _err(ActivationCode.FORBIDDEN, "only your team's coordinator transfers", "id")
    if row.status != FollowUpStatus.OPEN.value:
        raise _err(ActivationCode.CONFLICT, "this follow-up is already closed", "id")
    return row


def _check_agency(ctx: ActivationContext, to: str) -> None:
    d = ctx.directory
    if to == ctx.node_id or not d.has_node(to) or any(h.node_id == to for h in d.hubs()):
        raise _err(ActivationCode.UNKNOWN_AGENCY, f"{to} is not a member agency", "to")
    revoked = getattr(d, "is_revoked", None)
    if revoked is not None and revoked(to):
        raise _err(ActivationCode.REVOKED_AGENCY, f"{to} is revoked in the roster", "to")


async def record_consent(
    db: Db, ctx: ActivationContext, fid: uuid.UUID, to: str, *, user_id: uuid.UUID, team: str,
) -> ConsentOut:
    """The responder consented to moving this follow-up to `to`; `user_id` asked."""
    await _follow_up(db, fid, team)
    _check_agency(ctx, to)
    cid, now = uuid.uuid4(), ctx.now()
    await db.execute(insert(C).values(id=cid, follow_up_id=fid, to_agency=to, asked_by=user_id,
                                      consented_at=now, used_at=None))
    return ConsentOut(id=str(cid), follow_up_id=str(fid), to=to, asked_by=str(user_id),
                      consented_at=now)


async def send_transfer(
    db: Db, ctx: ActivationContext, fid: uuid.UUID, data: TransferIn, *, user_id: uuid.UUID,
    team: str,
) -> TransferOut:
    fu = await _follow_up(db, fid, team)
    _check_agency(ctx, data.to)
    pending = (await db.execute(select(T.c.id).where(
        T.c.follow_up_id == fid, T.c.state == TransferState.PENDING.value))).first()
    if pending is not None:
        raise _err(ActivationCode.DUPLICATE_TRANSFER, "a transfer is already pending", "id")
    consent = (await db.execute(
        select(C).where(C.c.follow_up_id == fid, C.c.to_agency == data.to,
                        C.c.used_at.is_(None))
        .order_by(C.c.consented_at.desc()).limit(1)
    )).first()
    if consent is None:
        raise _err(ActivationCode.NO_CONSENT, "record the responder's consent first", "to")
    now = ctx.now()
    due = data.due or fu.due_on.isoformat()
    body = wire_body(FollowupTransferBody, {
        "intervention": str(fu.intervention), "due": due,
        "discipline": str(fu.recipient_discipline), "contact_note": data.contact_note,
        "consent_ts": consent.consented_at, "answer_by_ts": now + TRANSFER_TTL_MS,
    })
    msg_id = await ctx.send(db, data.to, MessageType.FOLLOWUP_TRANSFER, wire_json(body))
    tid = uuid.uuid4()
    await db.execute(insert(T).values(
        id=tid, direction=TransferDirection.OUT.value, peer=data.to, msg_id=msg_id,
        follow_up_id=fid, handoff_id=None, consent_id=consent.id,
        intervention=body.intervention.value, discipline=body.discipline.value,
        due_on=datetime.date.fromisoformat(due), consent_ts=consent.consented_at,
        answer_by=body.answer_by_ts, state=TransferState.PENDING.value, reason=None,
        owner_id=None, created_by=user_id, created_at=now, decided_at=None,
    ))
    await db.execute(update(C).where(C.c.id == consent.id).values(used_at=now))
    return await _one(db, ctx, tid, user_id)


async def _first_coordinator(db: Db) -> uuid.UUID | None:
    row = (await db.execute(
        select(U.c.id).where(U.c.role == Role.COORDINATOR.value, U.c.active.is_(True))
        .order_by(U.c.created_at, U.c.username).limit(1)
    )).first()
    return row.id if row else None


async def apply_transfer(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """Store a received transfer: the note only in a sealed hand-off row."""
    body: FollowupTransferBody = m.body
    now = ctx.now()
    if now > body.answer_by_ts:
        raise _err(ActivationCode.TRANSFER_EXPIRED, "the answer was due already")
    hid = uuid.uuid4()
    due = datetime.date.fromisoformat(body.due)
    assignee = await _first_coordinator(db)
    await db.execute(insert(H).values(
        id=hid, activation_id=m.msg_id, requester=m.sender,
        direction=HandoffDirection.IN.value, peer=m.sender, msg_id=m.msg_id,
        discipline=body.discipline.value, due_on=due,
        note_ct=handoff.seal_note(ctx.note_key, body.contact_note),
        assigned_to=assignee, status=HandoffStatus.OPEN.value,
        created_at=now, completed_at=None,
    ))
    await db.execute(insert(T).values(
        id=uuid.uuid4(), direction=TransferDirection.IN.value, peer=m.sender, msg_id=m.msg_id,
        follow_up_id=None, handoff_id=hid, consent_id=None,
        intervention=body.intervention.value, discipline=body.discipline.value, due_on=due,
        consent_ts=body.consent_ts, answer_by=body.answer_by_ts,
        state=TransferState.PENDING.value, reason=None, owner_id=None, created_by=None,
        created_at=now, decided_at=None,
    ))
    await notify_queue.handoff_arrived(db, now, m.msg_id, assignee, "/transfers")


async def answer(
    db: Db, ctx: ActivationContext, tid: uuid.UUID, user_id: uuid.UUID, *,
    owner: uuid.UUID | None = None, reason: TransferDeclineReason | None = None,
) -> TransferOut:
    """Accept (with an owner on the coordinator's team) or decline (with a reason)."""
    row = (await db.execute(select(T).where(T.c.id == tid))).first()
    if row is None or row.direction != TransferDirection.IN.value:
        raise _err(ActivationCode.NOT_FOUND, "no such transfer", "id")
    await handoff._own_open(db, row.handoff_id, user_id)  # the assigned coordinator only
    if row.state != TransferState.PENDING.value:
        raise _err(ActivationCode.CONFLICT, f"this transfer is already {row.state}", "id")
    now = ctx.now()
    if now > row.answer_by:
        raise _err(ActivationCode.TRANSFER_EXPIRED, "the answer was due already", "id")
    if owner is not None:
        me = (await db.execute(select(U.c.team).where(U.c.id == user_id))).one()
        ok = (await db.execute(select(U.c.id).where(
            U.c.id == owner, U.c.active.is_(True), U.c.role.in_(_ASSIGNABLE),
            U.c.team == me.team))).first()
        if ok is None:
            raise _err(ActivationCode.INVALID_INPUT, "not an active supporter on your team",
                       "owner")
        outcome, values = TransferOutcome.ACCEPTED, {"owner_id": owner}
    else:
        outcome, values = TransferOutcome.DECLINED, {"reason": cast(Any, reason).value}
        await handoff.complete(db, ctx, row.handoff_id, user_id)  # purge the note now
    await db.execute(update(T).where(T.c.id == tid).values(
        state=outcome.value, decided_at=now, **values))
    reply = wire_body(FollowupTransferReplyBody, {
        "transfer_id": row.msg_id, "outcome": outcome.value,
        "reason": reason.value if reason is not None else None,
    })
    await ctx.send(db, row.peer, MessageType.FOLLOWUP_TRANSFER_REPLY, wire_json(reply),
                   thread_id=row.msg_id, in_reply_to=row.msg_id)
    return await _one(db, ctx, tid, user_id)


async def apply_reply(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """The receiving agency's answer; the follow-up closes as `transferred` on acceptance."""
    body: FollowupTransferReplyBody = m.body
    row = (await db.execute(select(T).where(
        T.c.direction == TransferDirection.OUT.value, T.c.peer == m.sender,
        T.c.msg_id == body.transfer_id))).first()
    if row is None:
        raise _err(ActivationCode.NOT_A_PARTY, "no transfer of ours to the sender")
    late_ok = row.state == TransferState.EXPIRED.value and m.created_ts <= row.answer_by
    if row.state != TransferState.PENDING.value and not late_ok:
        if row.state == body.outcome.value:
            return  # the same answer again
        raise _err(ActivationCode.CONFLICT, f"this transfer is already {row.state}")
    now = ctx.now()
    await db.execute(update(T).where(T.c.id == row.id).values(
        state=body.outcome.value, decided_at=now,
        reason=body.reason.value if body.reason is not None else None))
    if body.outcome is not TransferOutcome.ACCEPTED:
        return
    await db.execute(update(F).where(
        F.c.id == row.follow_up_id, F.c.status == FollowUpStatus.OPEN.value,
    ).values(status=FollowUpStatus.TRANSFERRED.value, completed_at=now, updated_at=now))
    hub = ctx.hub()
    if hub is not None:
        status = FollowupTransferStatusBody(
            transfer_id=row.msg_id, sender=ctx.node_id, receiver=row.peer, ts=now)
        await ctx.send(db, hub, MessageType.FOLLOWUP_TRANSFER_STATUS, wire_json(status),
                       thread_id=row.msg_id)


async def expire_transfers(db: Db, ctx: ActivationContext) -> int:
    """Pending transfers past `answer_by` expire on both sides; a received note is purged."""
    now = ctx.now()
    due = (await db.execute(select(T.c.id, T.c.handoff_id).where(
        T.c.state == TransferState.PENDING.value, T.c.answer_by < now))).all()
    for r in due:
        await db.execute(update(T).where(T.c.id == r.id).values(
            state=TransferState.EXPIRED.value, decided_at=now))
        if r.handoff_id is not None:
            await db.execute(update(H).where(
                H.c.id == r.handoff_id, H.c.status == HandoffStatus.OPEN.value,
            ).values(status=HandoffStatus.DONE.value, note_ct=None, completed_at=now))
    return len(due)


def _out(row: Any, note: str | None) -> TransferOut:
    return TransferOut(
        id=str(row.id), direction=row.direction, peer=row.peer, msg_id=row.msg_id,
        follow_up_id=str(row.follow_up_id) if row.follow_up_id else None,
        intervention=row.intervention, discipline=row.discipline,
        due=row.due_on.isoformat(), consent_ts=row.consent_ts, answer_by=row.answer_by,
        state=row.state, reason=row.reason, owner=str(row.owner_id) if row.owner_id else None,
        contact_note=note, created_at=row.created_at, decided_at=row.decided_at,
    )


_LIST = (
    select(T, H.c.note_ct, H.c.assigned_to)
    .select_from(T.outerjoin(H, H.c.id == T.c.handoff_id))
)


def _note(ctx: ActivationContext, row: Any, user_id: uuid.UUID) -> str | None:
    if row.note_ct is None or row.assigned_to != user_id:
        return None
    return handoff.open_note(ctx.note_key, row.note_ct)


async def _one(db: Db, ctx: ActivationContext, tid: uuid.UUID, user_id: uuid.UUID
               ) -> TransferOut:
    row = (await db.execute(_LIST.where(T.c.id == tid))).one()
    return _out(row, _note(ctx, row, user_id))


async def list_transfers(
    db: Db, ctx: ActivationContext, user_id: uuid.UUID, *, limit: int = 1000
) -> list[TransferOut]:
    """Both directions, newest first; a received note only for its assigned coordinator."""
    rows = (await db.execute(
        _LIST.order_by(T.c.created_at.desc(), T.c.id).limit(limit))).all()
    return [_out(r, _note(ctx, r, user_id)) for r in rows]


async def owned_transfers(db: Db, user_id: uuid.UUID) -> list[TransferOut]:
    """Received transfers accepted with `user_id` as owner (their "my follow-ups" view):
    metadata only, the note stays with the receiving coordinator."""
    rows = (await db.execute(_LIST.where(
        T.c.direction == TransferDirection.IN.value, T.c.owner_id == user_id,
        T.c.state == TransferState.ACCEPTED.value,
    ).order_by(T.c.due_on, T.c.id))).all()
    return [_out(r, None) for r in rows]
