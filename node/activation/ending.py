"""Ending an activation, on either side: cancel, close, and the expiry sweep.

`cancel` calls off the whole activation or one leg (requester) or its own leg
(responder), telling the other side; `close` follows demobilization (the requester's
legs must all be demobilized or over); `expire_due` (the sweep, on the injected clock)
expires legs still `requested` or `offered` past the request's expiry on both sides from
the same `expires_ts`, sending nothing to the other side, and drops early messages whose
request can no longer arrive. Each follows `activation_writes`' order.
"""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, select

from node.activation import batched
from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.models import ActivationOut
from node.activation.rows import EARLY, A, ActRow, L, LegRow, S, find, leg_of, legs_of
from node.activation.states import OPEN_STATES, Event, step
from node.activation.views import overall_state, view
from node.activation.writes import apply_leg, record_event, report, set_own_state, step_or_refuse
from protocol.activation_bodies import ActivationCancelBody
from protocol.messages import MessageType
from protocol.vocabulary import CancelReason
from protocol.wire_types import wire_json

__all__ = [
    "cancel",
    "close",
    "expire_due",
]


async def cancel(
    db: Db,
    ctx: ActivationContext,
    activation_id: str,
    reason: CancelReason,
    *,
    requester: str | None = None,
    responder: str | None = None,
) -> ActivationOut:
    """Call off an activation (or one leg of it) from any open state.

    Requester: the whole activation (every open leg is cancelled and told), or the leg of
    `responder` only. Responder: its own leg (the requester is told).
    """
    act, legs, approval = await batched.load(db, activation_id, requester)
    if act.side is Side.OUT:  # few statements (`node.activation.batched`)
        return await batched.cancel_out(db, ctx, act, legs, approval, reason,
                                        responder=responder)
    return await cancel_in(db, ctx, act, legs, reason)


async def cancel_in(db: Db, ctx: ActivationContext, act: ActRow, legs: list[LegRow],
                     reason: CancelReason) -> ActivationOut:
    """The responder calls off its own leg (the requester is told)."""
    leg = legs[0]
    new = step_or_refuse(leg.state, Event.CANCEL, "this offer")
    sent = await ctx.send(
        db, act.requester, MessageType.ACTIVATION_CANCEL,
        wire_json(ActivationCancelBody(reason=reason)),
        thread_id=act.activation_id, in_reply_to=leg.request_msg_id,
    )
    await apply_leg(
        db, ctx, act, leg, new, actor=ctx.node_id, msg_id=sent,
        cancel_reason=reason.value, cancelled_by=ctx.node_id,
    )
    return await view(db, ctx, act)


async def close(
    db: Db, ctx: ActivationContext, activation_id: str, *, requester: str | None = None
) -> ActivationOut:
    """Close after demobilization. Requester: every leg must be demobilized or over; the
    demobilized legs and the activation close. Responder: its own leg closes (local)."""
    act = await find(db, activation_id, requester)
    legs = await legs_of(db, act.key)
    if act.side is Side.IN:
        leg = legs[0]
        new = step_or_refuse(leg.state, Event.CLOSE, "this activation")
        await apply_leg(db, ctx, act, leg, new, actor=ctx.node_id)
        return await view(db, ctx, act)
    summary = overall_state(act, legs)
    own = step_or_refuse(summary, Event.CLOSE)
    if any(x.state in OPEN_STATES and x.state is not S.DEMOBILIZED for x in legs):
        raise ActivationError(
            ActivationCode.ILLEGAL_TRANSITION,
            f"cannot close while agencies are still engaged (state {summary.value})", "state",
        )
    for leg in legs:
        if leg.state is S.DEMOBILIZED:
            await apply_leg(db, ctx, act, leg, step(leg.state, Event.CLOSE), actor=ctx.node_id)
    await set_own_state(db, ctx, act, own)
    await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
    await report(db, ctx, act, own, responder=None,
                 peers_offered=sum(x.offer_peers for x in legs))
    return await view(db, ctx, await find(db, activation_id, act.requester))


# --- responder side ---------------------------------------------------------------------



async def expire_due(db: Db, ctx: ActivationContext) -> int:
    """The expiry sweep: legs still `requested` or `offered` after the request's expiry
    become `expired` (both sides compute this from the same `expires_ts`; nothing is sent
    to the other side, the requester reports to the hub). Returns how many expired.

    Early messages whose request can no longer arrive (past their delivery window) are
    dropped here too."""
    now = ctx.now()
    await db.execute(delete(EARLY).where(EARLY.c.expires_ts < now))
    rows = (
        await db.execute(
            select(L.c.activation_key, L.c.responder)
            .select_from(L.join(A, L.c.activation_key == A.c.key))
            .where(
                and_(
                    A.c.expires_ts < now,
                    L.c.state.in_([S.REQUESTED.value, S.OFFERED.value]),
                )
            )
        )
    ).all()
    acts: dict[uuid.UUID, ActRow] = {}
    n = 0
    for key, responder in rows:
        if key not in acts:
            row = (await db.execute(select(A).where(A.c.key == key))).one()
            acts[key] = ActRow.of(row)
        leg = await leg_of(db, key, responder)
        if leg is None:  # pragma: no cover - selected above in this transaction
            continue
        await apply_leg(db, ctx, acts[key], leg, step(leg.state, Event.EXPIRE), actor=ctx.node_id)
        n += 1
    return n

