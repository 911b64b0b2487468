"""The responder's operations on an incoming request: offer peers, say no, report progress.

`make_offer` (counts by discipline, never names), `decline_request`, and `send_update`
(mobilized, on_scene, demobilized: `STAGE_EVENTS` maps each stage to its state-machine
event, for local updates and inbound ones alike). Each answers the requester in the
activation's thread (`in_reply_to` names the message it answers) and follows
`activation_writes`' order in the caller's transaction. Ending: `activation_ending`.
"""

from __future__ import annotations

import uuid

from node.activation.approval import require_approved
from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.models import ActivationOut, OfferIn
from node.activation.rows import find, json_text, legs_of, wire_body
from node.activation.states import Event
from node.activation.views import view
from node.activation.writes import apply_leg, require_open_request, require_side, step_or_refuse
from protocol.activation_bodies import (
    ActivationDeclineBody,
    ActivationOfferBody,
    ActivationUpdateBody,
)
from protocol.messages import MessageType
from protocol.vocabulary import DeclineReason, Stage
from protocol.wire_types import wire_json

__all__ = [
    "STAGE_EVENTS",
    "decline_request",
    "make_offer",
    "send_update",
]


STAGE_EVENTS: dict[Stage, Event] = {
    Stage.MOBILIZED: Event.MOBILIZE,
    Stage.ON_SCENE: Event.ARRIVE,
    Stage.DEMOBILIZED: Event.DEMOBILIZE,
}


async def make_offer(
    db: Db, ctx: ActivationContext, activation_id: str, offer: OfferIn, *,
    requester: str | None = None, user_id: uuid.UUID | None = None,
) -> ActivationOut:
    """Offer peers (counts by discipline, never names) to an incoming request."""
    act = await find(db, activation_id, requester)
    require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = step_or_refuse(leg.state, Event.OFFER, "this request")
    require_open_request(ctx, act)
    await require_approved(db, act, "offering")  # interstate, when policy says so
    body = wire_body(ActivationOfferBody, {
        "peers": offer.peers, **offer.model_dump(mode="json"),
    })
    wire = wire_json(body)
    msg_id = await ctx.send(
        db, act.requester, MessageType.ACTIVATION_OFFER, wire,
        thread_id=act.activation_id, in_reply_to=leg.request_msg_id,
    )
    await apply_leg(
        db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id, offer_msg_id=msg_id,
        offer=json_text(wire), offer_peers=body.peers, offered_by=user_id,
    )
    return await view(db, ctx, act)


async def decline_request(
    db: Db, ctx: ActivationContext, activation_id: str, reason: DeclineReason, *,
    requester: str | None = None,
) -> ActivationOut:
    """The responder says no to an incoming request (before an offer is accepted)."""
    act = await find(db, activation_id, requester)
    require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = step_or_refuse(leg.state, Event.DECLINE, "this request")
    msg_id = await ctx.send(
        db, act.requester, MessageType.ACTIVATION_DECLINE,
        wire_json(ActivationDeclineBody(reason=reason)),
        thread_id=act.activation_id, in_reply_to=leg.request_msg_id,
    )
    await apply_leg(
        db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id,
        decline_reason=reason.value, declined_by=ctx.node_id,
    )
    return await view(db, ctx, act)


async def send_update(
    db: Db, ctx: ActivationContext, activation_id: str, stage: Stage, *,
    requester: str | None = None,
) -> ActivationOut:
    """Responder's progress: mobilized, on_scene, demobilized."""
    act = await find(db, activation_id, requester)
    require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = step_or_refuse(leg.state, STAGE_EVENTS[stage], "this activation")
    msg_id = await ctx.send(
        db, act.requester, MessageType.ACTIVATION_UPDATE,
        wire_json(ActivationUpdateBody(stage=stage)), thread_id=act.activation_id,
        in_reply_to=leg.accept_msg_id,
    )
    await apply_leg(db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id)
    return await view(db, ctx, act)


# --- both sides -------------------------------------------------------------------------
