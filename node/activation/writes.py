"""Activation writes: the steps every operation takes to change an activation.

One order for every change: ask `activation_states.step` (`step_or_refuse` turns a
refusal into the stable `ActivationError` before anything is written), then move the row
with a conditional update naming the state it moves from (`apply_leg`, `set_own_state`:
if a concurrent transaction moved it first, nothing matches and the operation is refused
with `conflict`), then write the history event (`record_event`) and the requester's
`activation_status` report to the hub (`report`). Inbound messages merge instead of
stepping (`merge_leg`), so a thread delivered out of order still converges.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, insert, select, update

from federation.prepared import Prepared
from node.activation.context import ActivationContext, Db, dialect_of
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.rows import A, ActRow, E, L, LegRow, S
from node.activation.states import (
    EVENT_TARGETS,
    TERMINAL_STATES,
    Event,
    RefusalCode,
    TransitionRefused,
    merge,
    step,
)
from protocol.hub_bodies import ActivationStatusBody, StatusCounts
from protocol.messages import MessageType
from protocol.vocabulary import ActivationState
from protocol.wire_types import wire_json

__all__ = [
    "apply_leg",
    "merge_leg",
    "record_event",
    "refusal",
    "report",
    "report_message",
    "require_one_row",
    "require_open_request",
    "require_side",
    "set_own_state",
    "step_or_refuse",
]

_LEG_FOR_UPDATE = Prepared(select(L).where(L.c.id == bindparam("b_id")).with_for_update())
_INSERT_EVENT = Prepared(insert(E))
# Conditional moves: SET comes from the parameters' column names.
_MOVE_LEG = Prepared(
    update(L).where(L.c.id == bindparam("b_id"), L.c.state == bindparam("b_from"))
)
_MOVE_OWN = Prepared(
    update(A).where(A.c.key == bindparam("b_key"), A.c.own_state == bindparam("b_from"))
)


def refusal(exc: TransitionRefused, what: str) -> ActivationError:
    code = (
        ActivationCode.TERMINAL_STATE
        if exc.code is RefusalCode.TERMINAL_STATE
        else ActivationCode.ILLEGAL_TRANSITION
    )
    return ActivationError(
        code, f"cannot {exc.event.value} {what} in state {exc.state.value}", "state"
    )


def step_or_refuse(
    state: ActivationState, event: Event, what: str = "the activation"
) -> ActivationState:
    try:
        return step(state, event)
    except TransitionRefused as exc:
        raise refusal(exc, what) from None


async def record_event(
    db: Db,
    ctx: ActivationContext,
    act: ActRow,
    state: ActivationState,
    *,
    responder: str | None,
    actor: str,
    msg_id: str | None = None,
    note: str | None = None,
) -> None:
    await _INSERT_EVENT.run(
        db,
        {
            "activation_key": act.key, "responder": responder, "state": state.value,
            "actor_node": actor, "msg_id": msg_id, "ts": ctx.now(),
            "note": note[:200] if note else None,
        },
    )


async def report(
    db: Db,
    ctx: ActivationContext,
    act: ActRow,
    state: ActivationState,
    *,
    responder: str | None,
    peers_offered: int,
    responders: list[str] | None = None,
) -> None:
    """One `activation_status` to the hub's central log (requester side only)."""
    msg = report_message(ctx, act, state, responder=responder, peers_offered=peers_offered,
                      responders=responders)
    if msg is not None:
        await ctx.send(db, msg[0], msg[1], msg[2], thread_id=msg[3])


def report_message(
    ctx: ActivationContext,
    act: ActRow,
    state: ActivationState,
    *,
    responder: str | None,
    peers_offered: int,
    responders: list[str] | None = None,
) -> tuple[str, MessageType, dict[str, Any], str | None] | None:
    """The `activation_status` message of `report` as `(to, type, body, thread_id)`, or None
    when nothing is reported."""
    hub = ctx.hub()
    # The requester reports; on an interstate thread the responder reports its leg to its
    # own hub too, so both networks' hubs log the thread (node.activation.interstate).
    if hub is None or (act.side is not Side.OUT and ("/" not in act.requester
                                                      or responder is None)):
        return None
    if state is S.DRAFT or act.own_state is S.DRAFT:
        return None  # a draft (even a cancelled one) never leaves the node
    r = act.request
    body = ActivationStatusBody(
        activation_id=act.activation_id,
        requester=act.requester,
        responder=responder,
        state=state,
        counts=StatusCounts(
            affected=min(sum(r.affected.values()), 100_000),
            peers_needed=r.peers_needed,
            peers_offered=min(peers_offered, 100_000),
        ),
        incident_type=r.incident_type,
        ts=ctx.now(),
        **({"responders": responders} if responders else {}),
    )
    return hub, MessageType.ACTIVATION_STATUS, wire_json(body), act.activation_id


async def apply_leg(
    db: Db,
    ctx: ActivationContext,
    act: ActRow,
    leg: LegRow,
    new_state: ActivationState,
    *,
    actor: str,
    msg_id: str | None = None,
    **values: Any,
) -> None:
    """Write a leg's new state (already checked with `step` against `leg.state`), its event
    and its report. The update names the state it moves from: if a concurrent transaction
    moved the leg first, nothing matches and the whole operation is refused (`conflict`)."""
    now = ctx.now()
    res = await _MOVE_LEG.run(
        db,
        {"b_id": leg.id, "b_from": leg.state.value, "state": new_state.value,
         "updated_at": now, **values},
    )
    require_one_row(res)
    await record_event(db, ctx, act, new_state, responder=leg.responder, actor=actor, msg_id=msg_id)
    await report(
        db, ctx, act, new_state, responder=leg.responder,
        peers_offered=values.get("offer_peers", leg.offer_peers),
    )


async def merge_leg(
    db: Db,
    ctx: ActivationContext,
    act: ActRow,
    leg: LegRow,
    event: Event,
    *,
    actor: str,
    msg_id: str | None,
    what: str,
    note: str | None = None,
    **values: Any,
) -> bool:
    """Merge a remote message's `event` into `leg` (`activation_states.merge`).

    Forward: the implied steps are recorded with a note, then the new state is written as
    `apply_leg` does (with `values`). Stale (behind the leg, or the leg is over): only a
    history row with the message's state and a note; `values` are not written. Answers
    whether the leg changed.

    On PostgreSQL the leg is read again `FOR UPDATE` first: a message applied while a local
    action (or another message) moves the same leg waits for it and merges into its
    outcome, instead of failing the conditional update (`conflict`) and being refused for
    good. `leg` must have been read in the caller's (write) transaction.
    """
    if dialect_of(db) != "sqlite":
        # SQLite needs no re-read: callers read `leg` in this write transaction, which holds
        # the database's only write lock from before that read (the in-process writer queue).
        leg = LegRow.of((await _LEG_FOR_UPDATE.run(db, {"b_id": leg.id})).one())
    outcome = merge(leg.state, event)
    if outcome.stale:
        claimed = EVENT_TARGETS[event]
        await record_event(
            db, ctx, act, claimed, responder=leg.responder, actor=actor, msg_id=msg_id,
            note=f"stale: {what} arrived when the leg was already {leg.state.value}; "
                 "no change",
        )
        return False
    for implied in outcome.skipped:
        await record_event(
            db, ctx, act, implied, responder=leg.responder, actor=actor, msg_id=msg_id,
            note=f"implied by {what} (that message had not arrived)",
        )
    if leg.state in TERMINAL_STATES:
        note = (f"{outcome.state.value} reached concurrently with {leg.state.value}: "
                f"{outcome.state.value} takes precedence on both sides")
    now = ctx.now()
    res = await _MOVE_LEG.run(
        db,
        {"b_id": leg.id, "b_from": leg.state.value, "state": outcome.state.value,
         "updated_at": now, **values},
    )
    require_one_row(res)
    await record_event(
        db, ctx, act, outcome.state, responder=leg.responder, actor=actor, msg_id=msg_id,
        note=note,
    )
    await report(
        db, ctx, act, outcome.state, responder=leg.responder,
        peers_offered=values.get("offer_peers", leg.offer_peers),
    )
    return True


def require_one_row(res: Any) -> None:
    if cast(CursorResult[Any], res).rowcount != 1:
        raise ActivationError(
            ActivationCode.CONFLICT, "the activation changed meanwhile: try again", "state"
        )


async def set_own_state(db: Db, ctx: ActivationContext, act: ActRow, state: ActivationState,
                   **values: Any) -> None:
    """Move the activation's own state from `act.own_state` (conditional, as `apply_leg`)."""
    res = await _MOVE_OWN.run(
        db,
        {"b_key": act.key, "b_from": act.own_state.value, "own_state": state.value,
         "updated_at": ctx.now(), **values},
    )
    require_one_row(res)


def require_side(act: ActRow, side: Side) -> None:
    if act.side is not side:
        who = "the requester" if side is Side.OUT else "a responder"
        raise ActivationError(ActivationCode.WRONG_SIDE, f"only {who} can do this", "side")


def require_open_request(ctx: ActivationContext, act: ActRow) -> None:
    if ctx.now() > act.expires_ts:
        raise ActivationError(ActivationCode.EXPIRED, "the request has expired", "expires_ts")

