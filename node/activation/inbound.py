"""Applying inbound activation messages (run inside the federation inbox transaction).

The federation inbox has already verified, decrypted and de-duplicated the envelope and
validated the body against its wire model; what is left is business: does this message
belong to an activation we know, is its sender a party to it, could the sender have sent
it at all, and what does it change? A message that could not have been sent (wrong party
or side, an acceptance of an offer this node never made, an update before any acceptance,
a decline after the responder mobilized...) raises `ActivationError` before anything is
written, so a refused message changes nothing (the inbox also runs each handler in a
savepoint, see `node.activation.runtime`).

Order independence. Federation delivers each message exactly once but not in order: a
message travels direct or through the hub, and a retried one is overtaken by later ones
of the same thread. So a valid message is never refused for arriving at the wrong moment;
it is merged into the leg (`activation_states.merge`, written by
`activation_writes.merge_leg`): forward along the lifecycle even over skipped steps
(recorded in the history with a note), stale with no change when behind, and terminal
states win (a late request or offer on a cancelled leg is kept cancelled, never shown as
open). Both copies of a leg therefore end in the same state whatever the arrival order.

Early messages. The one message that can reach a responder before the request it belongs
to is the requester's `activation_cancel` (every other message of the requester answers an
offer, which the responder makes only after storing the request). It is accepted and kept
in `activation_early` by (sender, thread id); the request, when it arrives, is stored and
the early messages are applied in the same transaction, so the request is stored
cancelled and never offered on. An early message whose request never comes is swept when
its delivery window has passed (`activation_ending.expire_due`).

Routing by thread: every message names the activation in `thread_id` (a request with a null
thread id, as another implementation may send to a single agency, uses its own msg_id).

- `activation_request` from X: a new incoming activation (side `in`), if X is the
  requesting agency the body names and the roster lets X ask us (X of another network:
  `tx/a` naming `a`, see `node.activation.interstate`; held for approval when this node's
  policy says so, `node.activation.approval`).
- `activation_offer`, `activation_update` from X: our request's leg to X.
- `activation_accept` from X: our offer to X's request; it must name our offer's msg_id.
  An acceptance of an offer already accepted is applied once: the repeat is a no-op.
- `activation_decline`, `activation_cancel` from X: whichever side of the thread X is on
  (the requester declining our offer or calling it off; a responder declining our request
  or withdrawing).
- `followup_handoff`: see `node.activation.handoff`; a responder's hand-off implies it demobilized
  (`settle_for_handoff`).

Timeliness: an offer or acceptance counts when it was *made* before the request's expiry
(the inner `created_ts`, signed by the sender), so a node that was down does not lose a
timely answer. The expiry sweep is each node's own inference: a timely acceptance that
finds the responder's copy already expired by its sweep revives it to `accepted`, as the
requester's copy is (the requester accepted in time and cannot learn of the sweep).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from federation.prepared import Prepared
from node.activation.context import ActivationContext, Db, dialect_of
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.interstate import agency_of, is_qualified
from node.activation.interstate_rules import hold_if_required, may_ask_us
from node.activation.responder import STAGE_EVENTS
from node.activation.rows import EARLY, A, ActRow, L, LegRow, json_text, leg_of, legs_of, load
from node.activation.states import Event
from node.activation.writes import merge_leg, record_event, report, require_one_row, step_or_refuse
from node.notify import queue as notify_queue
from protocol.activation_bodies import (
    ActivationAcceptBody,
    ActivationCancelBody,
    ActivationDeclineBody,
    ActivationOfferBody,
    ActivationRequestBody,
    ActivationUpdateBody,
)
from protocol.envelope import SKEW_MS
from protocol.messages import BODY_MODELS, MessageType
from protocol.vocabulary import ActivationState
from protocol.wire_types import wire_json

__all__ = [
    "ACTIVATION_TYPES",
    "EARLY_TYPES",
    "EARLY_WINDOW_MS",
    "Inbound",
    "apply_inbound",
    "settle_for_handoff",
]

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

# What may arrive before its request and is kept until the request comes (module notes).
EARLY_TYPES: frozenset[MessageType] = frozenset({MessageType.ACTIVATION_CANCEL})

# How long an early message waits for its request when the envelope's expiry is not
# known: the federation's default message lifetime (the request was sent before the early
# message, so it cannot arrive after this) plus the receivers' clock skew allowance.
EARLY_WINDOW_MS = 3 * 86_400_000 + SKEW_MS

_ENGAGED_BEFORE_DEMOB = frozenset({S.ACCEPTED, S.MOBILIZED, S.ON_SCENE})
_AFTER_ACCEPTED = frozenset({S.MOBILIZED, S.ON_SCENE, S.DEMOBILIZED, S.CLOSED})


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
    expires_ts: int | None = None  # the envelope's expiry, when the caller knows it


def _not_party(what: str) -> ActivationError:
    return ActivationError(ActivationCode.NOT_A_PARTY, what, "thread_id")


def _illegal(what: str) -> ActivationError:
    return ActivationError(ActivationCode.ILLEGAL_TRANSITION, what, "state")


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


async def _serialize_thread(db: Db, thread: str) -> None:
    """On PostgreSQL, one inbound message of a thread at a time (a transaction-scoped
    advisory lock): otherwise a cancel and its request applied at once by two deliveries
    could each miss the other (the cancel kept early after the request looked for early
    messages). SQLite's single writer serializes them already."""
    if dialect_of(db) != "postgresql":
        return
    digest = hashlib.blake2b(b"peernet/activation-thread/" + thread.encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    await db.execute(select(func.pg_advisory_xact_lock(key)))


async def apply_inbound(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """Apply one inbound activation message, or raise `ActivationError` (nothing written)."""
    await _serialize_thread(db, m.thread_id or m.msg_id)
    if m.msg_type is MessageType.ACTIVATION_REQUEST:
        await _on_request(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_OFFER:
        await _on_offer(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_ACCEPT:
        await _on_accept(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_UPDATE:
        await _on_update(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_DECLINE:
        await _on_decline(db, ctx, m)
    elif m.msg_type is MessageType.ACTIVATION_CANCEL:
        await _on_cancel(db, ctx, m)
    else:  # pragma: no cover - the registry only routes the types above here
        raise ActivationError(ActivationCode.INVALID_INPUT, "not an activation message")
    # Who must hear of it, queued in this transaction (node.notify; no content leaves).
    await notify_queue.activation_message(db, ctx.now(), m.msg_type.value, m.msg_id,
                                          m.thread_id or m.msg_id)


async def _on_request(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationRequestBody = m.body
    aid = m.thread_id or m.msg_id
    # The body names the requester within its network (interstate: `tx/a` names `a`).
    if body.requesting_agency != agency_of(m.sender):
        raise ActivationError(
            ActivationCode.NOT_A_PARTY, "requesting_agency is not the sender",
            "requesting_agency",
        )
    if not may_ask_us(ctx, m.sender):
        raise ActivationError(ActivationCode.BAD_TARGET, "the roster policy does not allow it")
    if await load(db, m.sender, aid) is not None:
        raise ActivationError(ActivationCode.CONFLICT, "this activation was already requested")
    now = ctx.now()
    key = uuid.uuid4()
    await _INSERT_ACTIVATION.run(db, {
        "key": key, "activation_id": aid, "requester": m.sender, "side": Side.IN.value,
        "own_state": S.REQUESTED.value, "request": json_text(wire_json(body)),
        "incident_ref": body.incident_ref, "incident_type": body.incident_type.value,
        "event_ts": body.event_ts, "expires_ts": body.expires_ts,
        "peers_needed": body.peers_needed, "affected_total": sum(body.affected.values()),
        "coordinator_id": None, "created_at": now, "updated_at": now,
    })
    await _INSERT_LEG.run(db, {
        "id": uuid.uuid4(), "activation_key": key, "responder": ctx.node_id,
        "state": S.REQUESTED.value, "request_msg_id": m.msg_id, "offer_peers": 0,
        "updated_at": now,
    })
    act = ActRow(
        key=key, activation_id=aid, requester=m.sender, side=Side.IN,
        own_state=S.REQUESTED, request=body, expires_ts=body.expires_ts, coordinator_id=None,
        created_at=now, updated_at=now,
    )
    await record_event(
        db, ctx, act, S.REQUESTED, responder=ctx.node_id, actor=m.sender, msg_id=m.msg_id
    )
    await hold_if_required(db, ctx, key, "in", is_qualified(m.sender))
    await report(db, ctx, act, S.REQUESTED, responder=ctx.node_id, peers_offered=0)
    await _apply_early(db, ctx, m.sender, aid)


# Statements of the request path, built once (as in `activation_rows`).
_INSERT_ACTIVATION = Prepared(insert(A))
_INSERT_LEG = Prepared(insert(L))
_EARLY_OF = Prepared(
    select(EARLY)
    .where(EARLY.c.peer == bindparam("b_peer"), EARLY.c.thread_id == bindparam("b_aid"))
    .order_by(EARLY.c.created_ts, EARLY.c.msg_id)
)


async def _keep_early(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    """Keep a message whose request has not arrived yet (module notes)."""
    assert m.thread_id is not None  # callers route only threaded messages here
    if not may_ask_us(ctx, m.sender):
        raise _not_party("the sender could not have asked this node")
    until = (m.expires_ts + SKEW_MS) if m.expires_ts is not None else (
        m.created_ts + EARLY_WINDOW_MS)
    await db.execute(
        insert(EARLY).values(
            peer=m.sender, thread_id=m.thread_id, msg_id=m.msg_id, msg_type=m.msg_type.value,
            created_ts=m.created_ts, in_reply_to=m.in_reply_to,
            body=json_text(wire_json(m.body)), received_at=ctx.now(), expires_ts=until,
        )
    )


async def _apply_early(db: Db, ctx: ActivationContext, peer: str, aid: str) -> None:
    """Apply the early messages of (peer, aid) in lifecycle order (one kind today: the
    requester's cancel), oldest first, then forget them."""
    rows = (await _EARLY_OF.run(db, {"b_peer": peer, "b_aid": aid})).all()
    if not rows:
        return
    for r in rows:
        msg_type = MessageType(r.msg_type)
        body = BODY_MODELS[msg_type].model_validate(json.loads(r.body))
        m = Inbound(msg_type, r.msg_id, peer, r.created_ts, aid, r.in_reply_to, body)
        found = await _as_responder(db, m)
        assert found is not None  # stored just now, in this transaction
        act, leg = found
        cbody: ActivationCancelBody = m.body
        await merge_leg(
            db, ctx, act, leg, Event.CANCEL, actor=peer, msg_id=m.msg_id,
            what="a cancellation", note="the cancellation arrived before the request",
            cancel_reason=cbody.reason.value, cancelled_by=peer,
        )
    await db.execute(delete(EARLY).where(EARLY.c.id.in_([r.id for r in rows])))


async def _on_offer(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationOfferBody = m.body
    act, leg = await _as_requester(db, ctx, m)
    if leg.state is S.DRAFT:
        step_or_refuse(leg.state, Event.OFFER, f"an offer from {m.sender}")  # refuses: never asked
    if leg.offer_msg_id is not None:
        raise _illegal(f"{m.sender} already made an offer in this activation")
    _in_time(act, m)
    await merge_leg(
        db, ctx, act, leg, Event.OFFER, actor=m.sender, msg_id=m.msg_id, what="an offer",
        offer_msg_id=m.msg_id, offer=json_text(wire_json(body)), offer_peers=body.peers,
    )


async def _on_accept(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationAcceptBody = m.body
    found = await _as_responder(db, m)
    if found is None:
        if m.thread_id is not None and await load(db, ctx.node_id, m.thread_id) is not None:
            raise _not_party("an acceptance is for the responder")
        # We make an offer only after storing the request, so an acceptance in a thread we
        # have not seen names an offer this node never made (never early: module notes).
        raise ActivationError(
            ActivationCode.UNKNOWN_OFFER, "no offer of this node in this thread", "offer_msg_id"
        )
    act, leg = found
    if leg.offer_msg_id is None or body.offer_msg_id != leg.offer_msg_id:
        raise ActivationError(
            ActivationCode.UNKNOWN_OFFER, "no offer with this id", "offer_msg_id"
        )
    if leg.accept_msg_id is not None:
        return  # the same offer accepted again: the first acceptance stands
    _in_time(act, m)
    now = ctx.now()
    if leg.state is S.EXPIRED:
        # Made in time, so the requester's copy is accepted; our sweep was only ahead of it.
        res = await db.execute(
            update(L)
            .where(L.c.id == leg.id, L.c.state == leg.state.value)
            .values(state=S.ACCEPTED.value, updated_at=now, accept_msg_id=m.msg_id,
                    accepted_at=now)
        )
        require_one_row(res)
        await record_event(
            db, ctx, act, S.ACCEPTED, responder=leg.responder, actor=m.sender,
            msg_id=m.msg_id,
            note="accepted before the expiry: the local expiry is undone",
        )
        await report(db, ctx, act, S.ACCEPTED, responder=leg.responder,
                     peers_offered=leg.offer_peers)
        return
    await merge_leg(
        db, ctx, act, leg, Event.ACCEPT, actor=m.sender, msg_id=m.msg_id, what="an acceptance",
        accept_msg_id=m.msg_id, accepted_at=now,
    )


async def _on_update(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationUpdateBody = m.body
    act, leg = await _as_requester(db, ctx, m)
    event = STAGE_EVENTS[body.stage]
    if leg.accept_msg_id is None:
        # A responder moves only after our acceptance: this one was never accepted.
        step_or_refuse(leg.state, event, f"an update from {m.sender}")
        raise _illegal("an update before any acceptance")  # pragma: no cover - step refused
    await merge_leg(
        db, ctx, act, leg, event, actor=m.sender, msg_id=m.msg_id,
        what=f"the {body.stage.value} update",
    )


async def _on_decline(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationDeclineBody = m.body
    found = await _as_responder(db, m)
    if found is not None:
        act, leg = found
        # The requester declines our offer: there must be one, not yet accepted.
        if leg.offer_msg_id is None or leg.accept_msg_id is not None or (
            leg.state in _AFTER_ACCEPTED
        ):
            raise _illegal("there is no offer to decline")
    else:
        act, leg = await _as_requester(db, ctx, m)
        if leg.state is S.DRAFT:
            step_or_refuse(leg.state, Event.DECLINE, "a decline")  # refuses: never asked
        # A responder declines before it mobilizes (it may cross our acceptance).
        if leg.state in _AFTER_ACCEPTED:
            raise _illegal(f"{m.sender} reported {leg.state.value}; it cannot decline now")
    await merge_leg(
        db, ctx, act, leg, Event.DECLINE, actor=m.sender, msg_id=m.msg_id, what="a decline",
        decline_reason=body.reason.value, declined_by=m.sender,
    )


async def _on_cancel(db: Db, ctx: ActivationContext, m: Inbound) -> None:
    body: ActivationCancelBody = m.body
    found = await _as_responder(db, m)
    if found is None:
        if m.thread_id is not None and await load(db, ctx.node_id, m.thread_id) is None:
            await _keep_early(db, ctx, m)  # its request has not arrived yet
            return
        found = await _as_requester(db, ctx, m)
    act, leg = found
    if leg.state is S.DRAFT:
        step_or_refuse(leg.state, Event.CANCEL, "a cancellation")
        raise _illegal("this request was never sent")
    await merge_leg(
        db, ctx, act, leg, Event.CANCEL, actor=m.sender, msg_id=m.msg_id,
        what="a cancellation", cancel_reason=body.reason.value, cancelled_by=m.sender,
    )


async def settle_for_handoff(
    db: Db, ctx: ActivationContext, act: ActRow, leg: LegRow, m: Inbound
) -> None:
    """May the follow-up hand-off `m` be stored on `leg`? Move the leg if it implies so.

    A hand-off comes after demobilization. A responder's hand-off that overtakes its
    `demobilized` update implies it (merged like the update). On a leg that was engaged
    and then cancelled, the follow-up is still kept (nobody is left without one); the
    state stays. Otherwise it is refused (`illegal_transition`).
    """
    if leg.state in (S.DEMOBILIZED, S.CLOSED):
        return
    if leg.state is S.CANCELLED and leg.accept_msg_id is not None:
        return
    if act.side is Side.OUT and leg.state in _ENGAGED_BEFORE_DEMOB:
        await merge_leg(
            db, ctx, act, leg, Event.DEMOBILIZE, actor=m.sender, msg_id=m.msg_id,
            what="a follow-up hand-off",
            note="implied by a follow-up hand-off (the demobilized update had not arrived)",
        )
        return
    raise _illegal("hand-off before demobilization")
