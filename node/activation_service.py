"""Activation services: the requester's and the responder's operations (DESIGN section 6).

Every operation runs in the caller's transaction and follows one order: read the rows,
ask `activation_states.step` for each change (a refusal raises before anything is
written), then write the rows, the history events, and the outbox rows (`ctx.send`). So a
refused operation changes nothing, and a committed one has its messages queued with it.

Requester side (`side = out`): `create_request` (draft, or sent at once), `submit`,
`accept_offer` (names the offer's msg_id; a repeated acceptance of the same offer returns
the first outcome and sends nothing), `decline_offer`, `cancel`, `close`. Responder side
(`side = in`): `make_offer`, `decline_request`, `send_update` (mobilized, on_scene,
demobilized), `cancel`, `close`. Both: `expire_due` (the sweep, on the injected clock),
`get`, `list_activations`, `targets`.

Messages: the request goes to each target with `thread_id = activation_id` (the ULID the
requester chose); every later message of the activation carries the same thread id and
names what it answers in `in_reply_to`. The requester owns the activation, so it alone
reports to the hub's central activation log: one `activation_status` (metadata only: who
asked whom, when, state, counts) for every change it makes or receives, from `requested`
on (a draft never leaves the node).

Inbound messages are applied by `node.activation_inbound`: they are merged into the leg
(`merge_leg`, after `activation_states.merge`) rather than stepped, so that messages of a
thread delivered out of order still leave both copies of a leg in the same state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    CursorResult,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from federation.prepared import Prepared
from node.activation_context import ActivationContext, Db, dialect_of
from node.activation_db import (
    Activation,
    ActivationEarly,
    ActivationEvent,
    ActivationLeg,
    Side,
)
from node.activation_errors import ActivationCode, ActivationError
from node.activation_guardrails import timing_warnings
from node.activation_models import (
    AcceptOut,
    ActivationOut,
    ActivationSummary,
    LegOut,
    OfferIn,
    OfferOut,
    RequestIn,
    RequestOut,
    TargetOut,
    WarningOut,
)
from node.activation_states import (
    EVENT_TARGETS,
    OPEN_STATES,
    TERMINAL_STATES,
    Event,
    RefusalCode,
    TransitionRefused,
    merge,
    step,
    summarize,
)
from protocol.messages import (
    ActivationAcceptBody,
    ActivationCancelBody,
    ActivationDeclineBody,
    ActivationOfferBody,
    ActivationRequestBody,
    ActivationState,
    ActivationStatusBody,
    ActivationUpdateBody,
    CancelReason,
    DeclineReason,
    MessageType,
    Stage,
    StatusCounts,
    wire_json,
)

__all__ = [
    "STAGE_EVENTS",
    "ActRow",
    "LegRow",
    "accept_offer",
    "apply_leg",
    "cancel",
    "close",
    "create_request",
    "decline_offer",
    "decline_request",
    "expire_due",
    "find",
    "get",
    "leg_of",
    "legs_of",
    "list_activations",
    "load",
    "make_offer",
    "merge_leg",
    "record_event",
    "report",
    "send_update",
    "submit",
    "targets",
    "wire_body",
]

S = ActivationState
A = cast(Table, Activation.__table__)
L = cast(Table, ActivationLeg.__table__)
E = cast(Table, ActivationEvent.__table__)
EARLY = cast(Table, ActivationEarly.__table__)

# The statements of the inbound hot path, built once: building a statement and computing
# its cache key on every call costs more than SQLite takes to run it.
_FIND = Prepared(select(A).where(A.c.activation_id == bindparam("b_aid")).limit(2))
_FIND_BY = Prepared(
    select(A)
    .where(A.c.activation_id == bindparam("b_aid"), A.c.requester == bindparam("b_req"))
    .limit(2)
)
_LOAD = Prepared(
    select(A).where(A.c.requester == bindparam("b_req"), A.c.activation_id == bindparam("b_aid"))
)
_LEGS = Prepared(
    select(L).where(L.c.activation_key == bindparam("b_key")).order_by(L.c.responder)
)
_LEG = Prepared(
    select(L).where(L.c.activation_key == bindparam("b_key"), L.c.responder == bindparam("b_resp"))
)
_LEG_FOR_UPDATE = Prepared(select(L).where(L.c.id == bindparam("b_id")).with_for_update())
_INSERT_EVENT = Prepared(insert(E))
# Conditional moves: SET comes from the parameters' column names.
_MOVE_LEG = Prepared(
    update(L).where(L.c.id == bindparam("b_id"), L.c.state == bindparam("b_from"))
)
_MOVE_OWN = Prepared(
    update(A).where(A.c.key == bindparam("b_key"), A.c.own_state == bindparam("b_from"))
)

STAGE_EVENTS: dict[Stage, Event] = {
    Stage.MOBILIZED: Event.MOBILIZE,
    Stage.ON_SCENE: Event.ARRIVE,
    Stage.DEMOBILIZED: Event.DEMOBILIZE,
}


@dataclass(frozen=True)
class ActRow:
    key: uuid.UUID
    activation_id: str
    requester: str
    side: Side
    own_state: ActivationState
    request: ActivationRequestBody
    expires_ts: int
    coordinator_id: uuid.UUID | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: Row[Any]) -> ActRow:
        return cls(
            key=row.key,
            activation_id=row.activation_id,
            requester=row.requester,
            side=Side(row.side),
            own_state=S(row.own_state),
            request=ActivationRequestBody.model_validate(json.loads(row.request)),
            expires_ts=row.expires_ts,
            coordinator_id=row.coordinator_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class LegRow:
    id: uuid.UUID
    responder: str
    state: ActivationState
    request_msg_id: str | None
    offer_msg_id: str | None
    offer: ActivationOfferBody | None
    offer_peers: int
    accept_msg_id: str | None
    decline_reason: str | None
    declined_by: str | None
    cancel_reason: str | None
    cancelled_by: str | None
    updated_at: int

    @classmethod
    def of(cls, row: Row[Any]) -> LegRow:
        return cls(
            id=row.id,
            responder=row.responder,
            state=S(row.state),
            request_msg_id=row.request_msg_id,
            offer_msg_id=row.offer_msg_id,
            offer=(
                ActivationOfferBody.model_validate(json.loads(row.offer)) if row.offer else None
            ),
            offer_peers=row.offer_peers,
            accept_msg_id=row.accept_msg_id,
            decline_reason=row.decline_reason,
            declined_by=row.declined_by,
            cancel_reason=row.cancel_reason,
            cancelled_by=row.cancelled_by,
            updated_at=row.updated_at,
        )


def _refused(exc: TransitionRefused, what: str) -> ActivationError:
    code = (
        ActivationCode.TERMINAL_STATE
        if exc.code is RefusalCode.TERMINAL_STATE
        else ActivationCode.ILLEGAL_TRANSITION
    )
    return ActivationError(
        code, f"cannot {exc.event.value} {what} in state {exc.state.value}", "state"
    )


def _step(state: ActivationState, event: Event, what: str = "the activation") -> ActivationState:
    try:
        return step(state, event)
    except TransitionRefused as exc:
        raise _refused(exc, what) from None


W = TypeVar("W", bound=BaseModel)


def wire_body(model: type[W], data: dict[str, Any]) -> W:
    """A wire body from plain JSON values; what the API let through but the wire model
    refuses becomes `invalid_input` naming the field (never a 500)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in err.get("loc", ()) if not isinstance(p, int)) or None
        raise ActivationError(
            ActivationCode.INVALID_INPUT, f"{field or 'body'}: {err.get('msg', 'invalid')}",
            field,
        ) from None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- reading ----------------------------------------------------------------------------


async def find(db: Db, activation_id: str, requester: str | None = None) -> ActRow:
    """The activation with this id (`requester` disambiguates, rarely needed)."""
    if requester is None:
        rows = (await _FIND.run(db, {"b_aid": activation_id})).all()
    else:
        rows = (await _FIND_BY.run(db, {"b_aid": activation_id, "b_req": requester})).all()
    if not rows:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such activation", "activation_id")
    if len(rows) > 1:
        raise ActivationError(
            ActivationCode.CONFLICT, "several activations have this id: name the requester",
            "requester",
        )
    return ActRow.of(rows[0])


async def load(db: Db, requester: str, activation_id: str) -> ActRow | None:
    row = (await _LOAD.run(db, {"b_req": requester, "b_aid": activation_id})).first()
    return ActRow.of(row) if row else None


async def legs_of(db: Db, key: uuid.UUID) -> list[LegRow]:
    rows = (await _LEGS.run(db, {"b_key": key})).all()
    return [LegRow.of(r) for r in rows]


async def leg_of(db: Db, key: uuid.UUID, responder: str) -> LegRow | None:
    row = (await _LEG.run(db, {"b_key": key, "b_resp": responder})).first()
    return LegRow.of(row) if row else None


def _request_out(r: ActivationRequestBody) -> RequestOut:
    d = wire_json(r)
    return RequestOut.model_validate(d)


def _leg_out(leg: LegRow) -> LegOut:
    offer = None
    if leg.offer is not None and leg.offer_msg_id is not None:
        offer = OfferOut(
            msg_id=leg.offer_msg_id,
            peers=leg.offer.peers,
            disciplines={k.value: v for k, v in leg.offer.disciplines.items()},
            eta_minutes=leg.offer.eta_minutes,
            conditions=[c.value for c in leg.offer.conditions],
        )
    return LegOut(
        responder=leg.responder,
        state=leg.state,
        request_msg_id=leg.request_msg_id,
        offer=offer,
        accept_msg_id=leg.accept_msg_id,
        decline_reason=leg.decline_reason,
        declined_by=leg.declined_by,
        cancel_reason=leg.cancel_reason,
        cancelled_by=leg.cancelled_by,
        updated_at=leg.updated_at,
    )


def _warnings(ctx: ActivationContext, r: ActivationRequestBody) -> list[WarningOut]:
    return [
        WarningOut(code=w.code.value, message=w.message)
        for w in timing_warnings(
            event_ts=r.event_ts,
            interventions=r.interventions,
            window_start_ts=r.window_start_ts,
            window_end_ts=r.window_end_ts,
            now_ms=ctx.now(),
        )
    ]


def _state(act: ActRow, legs: Iterable[LegRow]) -> ActivationState:
    return summarize(act.own_state, [leg.state for leg in legs])


async def view(db: Db, ctx: ActivationContext, act: ActRow) -> ActivationOut:
    legs = await legs_of(db, act.key)
    return ActivationOut(
        activation_id=act.activation_id,
        requester=act.requester,
        side=act.side.value,
        state=_state(act, legs),
        own_state=act.own_state,
        request=_request_out(act.request),
        legs=[_leg_out(leg) for leg in legs],
        warnings=_warnings(ctx, act.request),
        created_at=act.created_at,
        updated_at=max([act.updated_at, *(leg.updated_at for leg in legs)]),
    )


async def get(
    db: Db, ctx: ActivationContext, activation_id: str, requester: str | None = None
) -> ActivationOut:
    return await view(db, ctx, await find(db, activation_id, requester))


async def list_activations(
    db: Db, ctx: ActivationContext, side: Side | None = None, limit: int = 200
) -> list[ActivationSummary]:
    q = select(A).order_by(A.c.created_at.desc()).limit(limit)
    if side is not None:
        q = q.where(A.c.side == side.value)
    acts = [ActRow.of(r) for r in (await db.execute(q)).all()]
    if not acts:
        return []
    by_key: dict[uuid.UUID, list[LegRow]] = {a.key: [] for a in acts}
    rows = (await db.execute(select(L).where(L.c.activation_key.in_(list(by_key))))).all()
    for r in rows:
        by_key[r.activation_key].append(LegRow.of(r))
    out = []
    for a in acts:
        legs = by_key[a.key]
        out.append(
            ActivationSummary(
                activation_id=a.activation_id,
                requester=a.requester,
                side=a.side.value,
                state=_state(a, legs),
                incident_ref=a.request.incident_ref,
                incident_type=a.request.incident_type.value,
                event_ts=a.request.event_ts,
                expires_ts=a.expires_ts,
                peers_needed=a.request.peers_needed,
                peers_offered=sum(leg.offer_peers for leg in legs),
                legs=len(legs),
                updated_at=max([a.updated_at, *(leg.updated_at for leg in legs)]),
            )
        )
    return out


def targets(
    ctx: ActivationContext, *, discipline: str | None = None, region: str | None = None
) -> list[TargetOut]:
    """Agencies in the roster this node could ask, filtered by discipline and region."""
    out = []
    for n in ctx.directory.nodes(discipline=discipline, region=region, role="agency"):
        if n.node_id == ctx.node_id:
            continue
        out.append(
            TargetOut(
                node_id=n.node_id,
                name=n.name,
                region=n.region,
                disciplines=[str(getattr(d, "value", d)) for d in n.disciplines],
                allowed=ctx.directory.may_request(ctx.node_id, n.node_id),
            )
        )
    return out


# --- writing helpers --------------------------------------------------------------------


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
    msg = _report_msg(ctx, act, state, responder=responder, peers_offered=peers_offered,
                      responders=responders)
    if msg is not None:
        await ctx.send(db, msg[0], msg[1], msg[2], thread_id=msg[3])


def _report_msg(
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
    if act.side is not Side.OUT or hub is None:
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
    _one_row(res)
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
    _one_row(res)
    await record_event(
        db, ctx, act, outcome.state, responder=leg.responder, actor=actor, msg_id=msg_id,
        note=note,
    )
    await report(
        db, ctx, act, outcome.state, responder=leg.responder,
        peers_offered=values.get("offer_peers", leg.offer_peers),
    )
    return True


def _one_row(res: Any) -> None:
    if cast(CursorResult[Any], res).rowcount != 1:
        raise ActivationError(
            ActivationCode.CONFLICT, "the activation changed meanwhile: try again", "state"
        )


async def _set_own(db: Db, ctx: ActivationContext, act: ActRow, state: ActivationState,
                   **values: Any) -> None:
    """Move the activation's own state from `act.own_state` (conditional, as `apply_leg`)."""
    res = await _MOVE_OWN.run(
        db,
        {"b_key": act.key, "b_from": act.own_state.value, "own_state": state.value,
         "updated_at": ctx.now(), **values},
    )
    _one_row(res)


def _require_side(act: ActRow, side: Side) -> None:
    if act.side is not side:
        who = "the requester" if side is Side.OUT else "a responder"
        raise ActivationError(ActivationCode.WRONG_SIDE, f"only {who} can do this", "side")


def _require_open_request(ctx: ActivationContext, act: ActRow) -> None:
    if ctx.now() > act.expires_ts:
        raise ActivationError(ActivationCode.EXPIRED, "the request has expired", "expires_ts")


# --- requester side ---------------------------------------------------------------------


async def create_request(
    db: Db, ctx: ActivationContext, data: RequestIn, *, user_id: uuid.UUID | None
) -> ActivationOut:
    """A new activation to `data.targets`: kept as a draft, or sent at once."""
    for t in data.targets:
        if t == ctx.node_id:
            raise ActivationError(
                ActivationCode.BAD_TARGET, "an agency cannot ask itself", "targets"
            )
        if not ctx.directory.has_node(t):
            raise ActivationError(
                ActivationCode.BAD_TARGET, f"{t} is not in the roster", "targets"
            )
        if not ctx.directory.may_request(ctx.node_id, t):
            raise ActivationError(
                ActivationCode.BAD_TARGET, f"the roster policy does not allow asking {t}",
                "targets",
            )
    now = ctx.now()
    if data.expires_ts <= now:
        raise ActivationError(ActivationCode.INVALID_INPUT, "expiry is in the past", "expires_ts")
    body = wire_body(
        ActivationRequestBody,
        {**data.model_dump(mode="json", exclude={"targets", "draft"}),
         "requesting_agency": ctx.node_id},
    )
    aid = ctx.new_id()
    key = uuid.uuid4()
    await db.execute(
        insert(A).values(
            key=key, activation_id=aid, requester=ctx.node_id, side=Side.OUT.value,
            own_state=S.DRAFT.value, request=_dumps(wire_json(body)),
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
            for t in data.targets
        ],
    )
    act = await find(db, aid, ctx.node_id)
    await record_event(db, ctx, act, S.DRAFT, responder=None, actor=ctx.node_id)
    if not data.draft:
        return await submit(db, ctx, aid)
    return await view(db, ctx, act)


async def submit(db: Db, ctx: ActivationContext, activation_id: str) -> ActivationOut:
    """Send a draft: one `activation_request` to each target agency."""
    act = await find(db, activation_id, ctx.node_id)
    _require_side(act, Side.OUT)
    own = _step(act.own_state, Event.SUBMIT)
    legs = await legs_of(db, act.key)
    for leg in legs:
        _step(leg.state, Event.SUBMIT, f"the request to {leg.responder}")
    _require_open_request(ctx, act)
    await _set_own(db, ctx, act, own)
    act = await find(db, activation_id, ctx.node_id)
    await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
    body = wire_json(act.request)
    # One report for the whole fan-out: the activation is requested, of these agencies
    # (`responders`), instead of one more message per agency.
    asked = [leg.responder for leg in legs] or None
    if ctx.send_many is not None:
        # The whole fan-out in one outbox insert: the report, then one request per leg.
        own_report = _report_msg(ctx, act, own, responder=None, peers_offered=0,
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
    _require_side(act, Side.OUT)
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
    new = _step(leg.state, Event.ACCEPT, f"the offer of {leg.responder}")
    _require_open_request(ctx, act)
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
    _require_side(act, Side.OUT)
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
    new = _step(leg.state, Event.DECLINE, f"the offer of {responder}")
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
    act = await find(db, activation_id, requester)
    legs = await legs_of(db, act.key)
    if act.side is Side.IN:
        leg = legs[0]
        new = _step(leg.state, Event.CANCEL, "this offer")
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
    own: ActivationState | None = None
    if responder is not None:
        leg_opt = next((x for x in legs if x.responder == responder), None)
        if leg_opt is None:
            raise ActivationError(ActivationCode.NOT_FOUND, "no such responder", "responder")
        if act.own_state is S.DRAFT:
            raise ActivationError(
                ActivationCode.ILLEGAL_TRANSITION, "a draft is cancelled as a whole", "responder"
            )
        _step(act.own_state, Event.CANCEL)  # the activation itself must still be open
        chosen = [leg_opt]
        _step(leg_opt.state, Event.CANCEL, f"the request to {responder}")
    else:
        own = _step(_state(act, legs), Event.CANCEL)
        chosen = [x for x in legs if x.state in OPEN_STATES]
    for leg in chosen:
        new = _step(leg.state, Event.CANCEL, f"the request to {leg.responder}")
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
        await _set_own(db, ctx, act, own, cancel_reason=reason.value)
        await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
        await report(db, ctx, act, own, responder=None,
                     peers_offered=sum(x.offer_peers for x in legs))
    return await view(db, ctx, await find(db, activation_id, act.requester))


async def close(
    db: Db, ctx: ActivationContext, activation_id: str, *, requester: str | None = None
) -> ActivationOut:
    """Close after demobilization. Requester: every leg must be demobilized or over; the
    demobilized legs and the activation close. Responder: its own leg closes (local)."""
    act = await find(db, activation_id, requester)
    legs = await legs_of(db, act.key)
    if act.side is Side.IN:
        leg = legs[0]
        new = _step(leg.state, Event.CLOSE, "this activation")
        await apply_leg(db, ctx, act, leg, new, actor=ctx.node_id)
        return await view(db, ctx, act)
    summary = _state(act, legs)
    own = _step(summary, Event.CLOSE)
    if any(x.state in OPEN_STATES and x.state is not S.DEMOBILIZED for x in legs):
        raise ActivationError(
            ActivationCode.ILLEGAL_TRANSITION,
            f"cannot close while agencies are still engaged (state {summary.value})", "state",
        )
    for leg in legs:
        if leg.state is S.DEMOBILIZED:
            await apply_leg(db, ctx, act, leg, step(leg.state, Event.CLOSE), actor=ctx.node_id)
    await _set_own(db, ctx, act, own)
    await record_event(db, ctx, act, own, responder=None, actor=ctx.node_id)
    await report(db, ctx, act, own, responder=None,
                 peers_offered=sum(x.offer_peers for x in legs))
    return await view(db, ctx, await find(db, activation_id, act.requester))


# --- responder side ---------------------------------------------------------------------


async def make_offer(
    db: Db, ctx: ActivationContext, activation_id: str, offer: OfferIn, *,
    requester: str | None = None, user_id: uuid.UUID | None = None,
) -> ActivationOut:
    """Offer peers (counts by discipline, never names) to an incoming request."""
    act = await find(db, activation_id, requester)
    _require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = _step(leg.state, Event.OFFER, "this request")
    _require_open_request(ctx, act)
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
        offer=_dumps(wire), offer_peers=body.peers, offered_by=user_id,
    )
    return await view(db, ctx, act)


async def decline_request(
    db: Db, ctx: ActivationContext, activation_id: str, reason: DeclineReason, *,
    requester: str | None = None,
) -> ActivationOut:
    """The responder says no to an incoming request (before an offer is accepted)."""
    act = await find(db, activation_id, requester)
    _require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = _step(leg.state, Event.DECLINE, "this request")
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
    _require_side(act, Side.IN)
    leg = (await legs_of(db, act.key))[0]
    new = _step(leg.state, STAGE_EVENTS[stage], "this activation")
    msg_id = await ctx.send(
        db, act.requester, MessageType.ACTIVATION_UPDATE,
        wire_json(ActivationUpdateBody(stage=stage)), thread_id=act.activation_id,
        in_reply_to=leg.accept_msg_id,
    )
    await apply_leg(db, ctx, act, leg, new, actor=ctx.node_id, msg_id=msg_id)
    return await view(db, ctx, act)


# --- both sides -------------------------------------------------------------------------


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


def offered_total(legs: Sequence[LegRow]) -> int:
    return sum(leg.offer_peers for leg in legs)
