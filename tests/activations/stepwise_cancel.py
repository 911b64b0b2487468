"""The requester's cancel leg by leg, one statement per row, as the node did it before
`node.activation.batched`: the oracle `ending.cancel` must match row for row, message for
message (tests/activations/test_batched.py). Test code only."""

from __future__ import annotations

from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.ending import cancel_in
from node.activation.errors import ActivationCode, ActivationError
from node.activation.models import ActivationOut
from node.activation.rows import S, find, legs_of
from node.activation.states import OPEN_STATES, Event
from node.activation.views import overall_state, view
from node.activation.writes import apply_leg, record_event, report, set_own_state, step_or_refuse
from protocol.activation_bodies import ActivationCancelBody
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState, CancelReason
from protocol.wire_types import wire_json


async def cancel_stepwise(
    db: Db,
    ctx: ActivationContext,
    activation_id: str,
    reason: CancelReason,
    *,
    requester: str | None = None,
    responder: str | None = None,
) -> ActivationOut:
    """The requester's cancel leg by leg, one statement per row: the reference
    `batched.cancel_out` must match row for row (tests/activations/test_batched.py)."""
    act = await find(db, activation_id, requester)
    legs = await legs_of(db, act.key)
    if act.side is Side.IN:
        return await cancel_in(db, ctx, act, legs, reason)
    own: ActivationState | None = None
    if responder is not None:
        leg_opt = next((x for x in legs if x.responder == responder), None)
        if leg_opt is None:
            raise ActivationError(ActivationCode.NOT_FOUND, "no such responder", "responder")
        if act.own_state is S.DRAFT:
            raise ActivationError(
                ActivationCode.ILLEGAL_TRANSITION, "a draft is cancelled as a whole", "responder"
            )
        step_or_refuse(act.own_state, Event.CANCEL)  # the activation itself must still be open
        chosen = [leg_opt]
        step_or_refuse(leg_opt.state, Event.CANCEL, f"the request to {responder}")
    else:
        own = step_or_refuse(overall_state(act, legs), Event.CANCEL)
        chosen = [x for x in legs if x.state in OPEN_STATES]
    for leg in chosen:
        new = step_or_refuse(leg.state, Event.CANCEL, f"the request to {leg.responder}")
        msg_id: str | None = None
        if leg.state is not S.DRAFT:
            msg_id = await ctx.send(
                db, leg.responder, MessageType.ACTIVATION_CANCEL,
                wire_json(ActivationCancelBody(reason=reason)),
                thread_id=act.activation_id, in_reply_to=leg.request_msg_id,
            )
        await apply_leg(
            db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id,
            cancel_reason=reason.value, cancelled_by=ctx.node_id,
        )
    if own is not None:
        await set_own_state(db, ctx, act, own, cancel_reason=reason.value)
        await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
        await report(db, ctx, act, own, responder=None,
                     peers_offered=sum(x.offer_peers for x in legs))
    return await view(db, ctx, await find(db, activation_id, act.requester))
