"""Applying inbound activation messages (run inside the federation inbox transaction).

The federation inbox has already verified, decrypted and de-duplicated the envelope and
validated the body against its wire model; what is left is business: does this message
belong to an activation we know, is its sender a party to it, and does the transition
table allow it now? Each check raises `ActivationError` before anything is written, so a
refused message changes nothing (the inbox also runs each handler in a savepoint, see
`node.activation_federation`).

Routing by thread: every message names the activation in `thread_id` (a request with a null
thread id, as another implementation may send to a single agency, uses its own msg_id).

- `activation_request` from X: a new incoming activation (side `in`), if X is the
  requesting agency the body names and the roster lets X ask us.
- `activation_offer`, `activation_update` from X: our request's leg to X.
- `activation_accept` from X: our offer to X's request; it must name our offer's msg_id.
  An acceptance of an offer already accepted is applied once: the repeat is a no-op.
- `activation_decline`, `activation_cancel` from X: whichever side of the thread X is on
  (the requester declining our offer or calling it off; a responder declining our request
  or withdrawing).
- `followup_handoff`: see `node.handoff`.

Timeliness: an offer or acceptance counts when it was *made* before the request's expiry
(the inner `created_ts`, signed by the sender), so a node that was down does not lose a
timely answer; the expiry sweep may still have expired the leg first, which then refuses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from node.activation_context import ActivationContext, Db
from node.activation_db import Side
from node.activation_errors import ActivationCode, ActivationError
from node.activation_service import (
    STAGE_EVENTS,
    A,
    ActRow,
    L,
    LegRow,
    _dumps,
    _step,
    apply_leg,
    leg_of,
    legs_of,
    load,
    record_event,
)
from node.activation_states import Event
from protocol.messages import (
    ActivationAcceptBody,
    ActivationCancelBody,
    ActivationDeclineBody,
    ActivationOfferBody,
    ActivationRequestBody,
    ActivationState,
    ActivationUpdateBody,
    MessageType,
    wire_json,
)

__all__ = ["ACTIVATION_TYPES", "Inbound", "apply_inbound"]

S = ActivationState

ACTIVATION_TYPES: frozenset[MessageType] = frozenset(
    {
        MessageType.ACTIVATION_REQUEST,
        MessageType.ACTIVATION_OFFER,
        MessageType.ACTIVATION_ACCEPT,
        MessageType.ACTIVATION_DECLINE,
        MessageType.ACTIVATION_UPDATE,
        MessageType.ACTIVATION_CANCEL,
    }
)


@dataclass(frozen=True)
class Inbound:
    """The parts of an opened envelope the business rules read."""

    msg_type: MessageType
    msg_id: str
    sender: str
    created_ts: int
    thread_id: str | None
    in_reply_to: str | None
    body: Any  # the validated body model of `msg_type`


def _not_party(what: str) -> ActivationError:
    return ActivationError(ActivationCode.NOT_A_PARTY, what, "thread_id")


async def _as_requester(db: Db, ctx: ActivationContext, m: Inbound) -> tuple[ActRow, LegRow]:
    """Our activation named by the thread, and the leg of the sender."""
    if m.thread_id is None:
        raise _not_party("no activation named")
    act = await load(db, ctx.node_id, m.thread_id)
    if act is None or act.side is not Side.OUT:
        raise _not_party("no such activation")
    leg = await leg_of(db, act.key, m.sender)
    if leg is None:
        raise _not_party("the sender was not asked in this activation")
    return act, leg


async def _as_responder(db: Db, m: Inbound) -> tuple[ActRow, LegRow] | None:
    """The incoming activation the sender requested, with our leg; None when unknown."""
    if m.thread_id is None:
        return None
    act = await load(db, m.sender, m.thread_id)
    if act is None or act.side is not Side.IN:
        return None
    return act, (await legs_of(db, act.key))[0]


def _in_time(act: ActRow, m: Inbound) -> None:
    if m.created_ts > act.expires_ts:
        raise ActivationError(ActivationCode.EXPIRED, "made after the request expired")


async def apply_inbound(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """Apply one inbound activation message, or raise `ActivationError` (nothing written)."""
    if m.msg_type is MessageType.ACTIVATION_REQUEST:
        await _on_request(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_OFFER:
        await _on_offer(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_ACCEPT:
        await _on_accept(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_UPDATE:
        await _on_update(db, ctx, m)
    elif m.msg_type in (MessageType.ACTIVATION_DECLINE, MessageType.ACTIVATION_CANCEL):
        await _on_decline_or_cancel(db, ctx, m)
    else:  # pragma: no cover - the registry only routes the types above here
        raise ActivationError(ActivationCode.INVALID_INPUT, "not an activation message")


async def _on_request(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationRequestBody = m.body
    aid = m.thread_id or m.msg_id
    if body.requesting_agency != m.sender:
        raise ActivationError(
            ActivationCode.NOT_A_PARTY, "requesting_agency is not the sender",
            "requesting_agency",
        )
    if not ctx.directory.may_request(m.sender, ctx.node_id):
        raise ActivationError(ActivationCode.BAD_TARGET, "the roster policy does not allow it")
    if await load(db, m.sender, aid) is not None:
        raise ActivationError(ActivationCode.CONFLICT, "this activation was already requested")
    now = ctx.now()
    key = uuid.uuid4()
    await db.execute(
        insert(A).values(
            key=key, activation_id=aid, requester=m.sender, side=Side.IN.value,
            own_state=S.REQUESTED.value, request=_dumps(wire_json(body)),
            incident_ref=body.incident_ref, incident_type=body.incident_type.value,
            event_ts=body.event_ts, expires_ts=body.expires_ts,
            peers_needed=body.peers_needed, affected_total=sum(body.affected.values()),
            coordinator_id=None, created_at=now, updated_at=now,
        )
    )
    await db.execute(
        insert(L).values(
            id=uuid.uuid4(), activation_key=key, responder=ctx.node_id,
            state=S.REQUESTED.value, request_msg_id=m.msg_id, offer_peers=0, updated_at=now,
        )
    )
    act = ActRow(
        key=key, activation_id=aid, requester=m.sender, side=Side.IN,
        own_state=S.REQUESTED, request=body, expires_ts=body.expires_ts, coordinator_id=None,
        created_at=now, updated_at=now,
    )
    await record_event(
        db, ctx, act, S.REQUESTED, responder=ctx.node_id, actor=m.sender, msg_id=m.msg_id
    )


async def _on_offer(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationOfferBody = m.body
    act, leg = await _as_requester(db, ctx, m)
    new = _step(leg.state, Event.OFFER, f"an offer from {m.sender}")
    _in_time(act, m)
    await apply_leg(
        db, ctx, act, leg, new, actor=m.sender, msg_id=m.msg_id, offer_msg_id=m.msg_id,
        offer=_dumps(wire_json(body)), offer_peers=body.peers,
    )


async def _on_accept(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationAcceptBody = m.body
    found = await _as_responder(db, m)
    if found is None:
        raise _not_party("no request from the sender in this thread")
    act, leg = found
    if leg.offer_msg_id is None or body.offer_msg_id != leg.offer_msg_id:
        raise ActivationError(
            ActivationCode.UNKNOWN_OFFER, "no offer with this id", "offer_msg_id"
        )
    if leg.accept_msg_id is not None:
        return  # the same offer accepted again: the first acceptance stands
    new = _step(leg.state, Event.ACCEPT, "an acceptance")
    _in_time(act, m)
    await apply_leg(
        db, ctx, act, leg, new, actor=m.sender, msg_id=m.msg_id, accept_msg_id=m.msg_id,
        accepted_at=ctx.now(),
    )


async def _on_update(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationUpdateBody = m.body
    act, leg = await _as_requester(db, ctx, m)
    new = _step(leg.state, STAGE_EVENTS[body.stage], f"an update from {m.sender}")
    await apply_leg(db, ctx, act, leg, new, actor=m.sender, msg_id=m.msg_id)


async def _on_decline_or_cancel(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    declining = m.msg_type is MessageType.ACTIVATION_DECLINE
    found = await _as_responder(db, m)
    if found is None:
        found = await _as_requester(db, ctx, m)
    act, leg = found
    if declining:
        dbody: ActivationDeclineBody = m.body
        if act.side is Side.IN and leg.state is not S.OFFERED:
            # a requester declines offers; before one it cancels instead
            raise ActivationError(
                ActivationCode.ILLEGAL_TRANSITION, "there is no offer to decline", "state"
            )
        new = _step(leg.state, Event.DECLINE, "a decline")
        await apply_leg(
            db, ctx, act, leg, new, actor=m.sender, msg_id=m.msg_id,
            decline_reason=dbody.reason.value, declined_by=m.sender,
        )
    else:
        cbody: ActivationCancelBody = m.body
        new = _step(leg.state, Event.CANCEL, "a cancellation")
        await apply_leg(
            db, ctx, act, leg, new, actor=m.sender, msg_id=m.msg_id,
            cancel_reason=cbody.reason.value, cancelled_by=m.sender,
        )
