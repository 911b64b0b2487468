"""The requester's operations: ask agencies for peers, then take or turn down their offers.

`create_request` (kept as a draft, or sent at once; held as a draft when this node's
policy wants interstate requests approved first, `node.activation.approval`), `submit` (one
`activation_request` to each target, the whole fan-out in one outbox insert when the
context can), and
`accept_offer` (names the offer's msg_id; accepting the same offer again returns the first
outcome and sends nothing) / `decline_offer`. Every operation runs in the caller's
transaction and follows `activation_writes`' order, so a refused operation changes
nothing and a committed one has its messages queued with it. The request goes out with
`thread_id = activation_id` (the ULID the requester chose); the requester owns the
activation and alone reports each change to the hub's central log, from `requested` on
(a draft never leaves the node). Ending an activation: `activation_ending`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, insert, select, update

from node.activation import batched
from node.activation.approval import require_approved
from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.interstate import is_qualified
from node.activation.interstate_rules import check_target, hold_if_required
from node.activation.models import AcceptOut, ActivationOut, RequestIn
from node.activation.rows import A, E, L, LegRow, S, find, json_text, leg_of, legs_of, wire_body
from node.activation.states import TERMINAL_STATES, Event
from node.activation.views import view
from node.activation.writes import (
    apply_leg,
    record_event,
    report,
    report_message,
    require_open_request,
    require_side,
    set_own_state,
    step_or_refuse,
)
from protocol.activation_bodies import (
    ActivationAcceptBody,
    ActivationDeclineBody,
    ActivationRequestBody,
)
from protocol.messages import MessageType
from protocol.vocabulary import DeclineReason
from protocol.wire_types import wire_json

__all__ = [
    "accept_offer",
    "checked_request",
    "create_request",
    "decline_offer",
    "submit",
]


def checked_request(ctx: ActivationContext, data: RequestIn
                    ) -> tuple[list[str], ActivationRequestBody, int]:
    """A new request's targets as stored, its wire body and the time now, or the refusal
    (before anything is written)."""
    # Home agencies by the roster's rules, others through the compact (interstate_rules).
    targets = [check_target(ctx, t) for t in data.targets]
    if len(set(targets)) != len(targets):
        raise ActivationError(ActivationCode.INVALID_INPUT, "targets must be unique", "targets")
    now = ctx.now()
    if data.expires_ts <= now:
        raise ActivationError(ActivationCode.INVALID_INPUT, "expiry is in the past", "expires_ts")
    body = wire_body(
        ActivationRequestBody,
        {**data.model_dump(mode="json", exclude={"targets", "draft"}),
         "requesting_agency": ctx.node_id},
    )
    return targets, body, now


async def create_request(
    db: Db, ctx: ActivationContext, data: RequestIn, *, user_id: uuid.UUID | None
) -> ActivationOut:
    """A new activation to `data.targets`: kept as a draft, or sent at once."""
    targets, body, now = checked_request(ctx, data)
    aid = ctx.new_id()
    key = uuid.uuid4()
    interstate = any(is_qualified(t) for t in targets)
    if not data.draft and not interstate:  # sent at once, never held: few statements
        return await batched.create_sent(db, ctx, aid=aid, key=key, body=body,
                                         targets=targets, user_id=user_id, now=now)
    await db.execute(
        insert(A).values(
            key=key, activation_id=aid, requester=ctx.node_id, side=Side.OUT.value,
            own_state=S.DRAFT.value, request=json_text(wire_json(body)),
            incident_ref=body.incident_ref, incident_type=body.incident_type.value,
            event_ts=body.event_ts, expires_ts=body.expires_ts, peers_needed=body.peers_needed,
            affected_total=sum(body.affected.values()), coordinator_id=user_id,
            created_at=now, updated_at=now,
        )
    )
    await db.execute(
        insert(L),
        [
            {"id": uuid.uuid4(), "activation_key": key, "responder": t,
             "state": S.DRAFT.value, "offer_peers": 0, "updated_at": now}
            for t in targets
        ],
    )
    act = await find(db, aid, ctx.node_id)
    await record_event(db, ctx, act, S.DRAFT, responder=None, actor=ctx.node_id)
    held = await hold_if_required(db, ctx, key, "out", interstate)
    if not data.draft and not held:
        return await submit(db, ctx, aid)
    return await view(db, ctx, act)


async def submit(db: Db, ctx: ActivationContext, activation_id: str) -> ActivationOut:
    """Send a draft: one `activation_request` to each target agency."""
    act = await find(db, activation_id, ctx.node_id)
    require_side(act, Side.OUT)
    own = step_or_refuse(act.own_state, Event.SUBMIT)
    legs = await legs_of(db, act.key)
    for leg in legs:
        step_or_refuse(leg.state, Event.SUBMIT, f"the request to {leg.responder}")
    require_open_request(ctx, act)
    await require_approved(db, act, "it is sent")
    await set_own_state(db, ctx, act, own)
    act = await find(db, activation_id, ctx.node_id)
    await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
    body = wire_json(act.request)
    # One report for the whole fan-out: the activation is requested, of these agencies
    # (`responders`), instead of one more message per agency.
    asked = [leg.responder for leg in legs] or None
    if ctx.send_many is not None:
        # The whole fan-out in one outbox insert: the report, then one request per leg.
        own_report = report_message(ctx, act, own, responder=None, peers_offered=0,
                                 responders=asked)
        msgs = [own_report] if own_report is not None else []
        msgs += [(leg.responder, MessageType.ACTIVATION_REQUEST, body, act.activation_id)
                 for leg in legs]
        ids = await ctx.send_many(db, msgs)
        first = 1 if own_report is not None else 0
        sent = list(zip(legs, ids[first : first + len(legs)], strict=True))
    else:
        await report(db, ctx, act, own, responder=None, peers_offered=0, responders=asked)
        sent = []
        for leg in legs:
            msg_id = await ctx.send(
                db, leg.responder, MessageType.ACTIVATION_REQUEST, body,
                thread_id=act.activation_id,
            )
            sent.append((leg, msg_id))
    # One statement each for every leg's row and history (a fan-out may have hundreds).
    now = ctx.now()
    if sent:
        await db.execute(
            update(L).where(L.c.id == bindparam("leg_id")).values(
                state=S.REQUESTED.value, request_msg_id=bindparam("mid"), updated_at=now
            ),
            [{"leg_id": leg.id, "mid": mid} for leg, mid in sent],
        )
        await db.execute(
            insert(E),
            [
                {"activation_key": act.key, "responder": leg.responder,
                 "state": S.REQUESTED.value, "actor_node": ctx.node_id, "msg_id": mid,
                 "ts": now}
                for leg, mid in sent
            ],
        )
    return await view(db, ctx, await find(db, activation_id, ctx.node_id))


async def accept_offer(
    db: Db, ctx: ActivationContext, activation_id: str, offer_msg_id: str
) -> AcceptOut:
    """Accept the offer `offer_msg_id`. Accepting the same offer again returns the first
    outcome (`repeated = true`) and sends nothing."""
    act = await find(db, activation_id, ctx.node_id)
    require_side(act, Side.OUT)
    # FOR UPDATE: a concurrent second acceptance (PostgreSQL) waits here, then sees the
    # first one's accept_msg_id and returns its outcome (SQLite's writer lock does the same).
    row = (
        await db.execute(
            select(L)
            .where(L.c.activation_key == act.key, L.c.offer_msg_id == offer_msg_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ActivationError(
            ActivationCode.UNKNOWN_OFFER, "no offer with this id in this activation",
            "offer_msg_id",
        )
    leg = LegRow.of(row)
    if leg.accept_msg_id is not None:
        return AcceptOut(
            activation_id=act.activation_id, offer_msg_id=offer_msg_id,
            responder=leg.responder, accept_msg_id=leg.accept_msg_id, state=leg.state,
            repeated=True,
        )
    if act.own_state in TERMINAL_STATES:
        raise ActivationError(
            ActivationCode.TERMINAL_STATE, f"the activation is {act.own_state.value}", "state"
        )
    new = step_or_refuse(leg.state, Event.ACCEPT, f"the offer of {leg.responder}")
    require_open_request(ctx, act)
    msg_id = await ctx.send(
        db, leg.responder, MessageType.ACTIVATION_ACCEPT,
        wire_json(ActivationAcceptBody(offer_msg_id=offer_msg_id)),
        thread_id=act.activation_id, in_reply_to=offer_msg_id,
    )
    await apply_leg(
        db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id, accept_msg_id=msg_id,
        accepted_at=ctx.now(),
    )
    return AcceptOut(
        activation_id=act.activation_id, offer_msg_id=offer_msg_id, responder=leg.responder,
        accept_msg_id=msg_id, state=new, repeated=False,
    )


async def decline_offer(
    db: Db, ctx: ActivationContext, activation_id: str, responder: str, reason: DeclineReason
) -> ActivationOut:
    """The requester turns down `responder`'s offer."""
    act = await find(db, activation_id, ctx.node_id)
    require_side(act, Side.OUT)
    leg = await leg_of(db, act.key, responder)
    if leg is None:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such responder", "responder")
    if leg.state is not S.OFFERED:
        # The requester declines offers; a pending request is cancelled instead.
        raise ActivationError(
            ActivationCode.TERMINAL_STATE if leg.state in TERMINAL_STATES
            else ActivationCode.ILLEGAL_TRANSITION,
            f"cannot decline the offer of {responder} in state {leg.state.value}", "state",
        )
    new = step_or_refuse(leg.state, Event.DECLINE, f"the offer of {responder}")
    msg_id = await ctx.send(
        db, responder, MessageType.ACTIVATION_DECLINE,
        wire_json(ActivationDeclineBody(reason=reason)),
        thread_id=act.activation_id, in_reply_to=leg.offer_msg_id,
    )
    await apply_leg(
        db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id,
        decline_reason=reason.value, declined_by=ctx.node_id,
    )
    return await view(db, ctx, act)
