"""The two busiest activation writes in few statements: a new request sent at once, and
the requester calling an activation off.

Why: under load (issue 16, `bench.load`) every activation request and its cancel took
about twenty statements each, one round trip to PostgreSQL apiece, and SQLAlchemy's
per-statement work on the node's one event loop was the largest share of its CPU. The
step-by-step operations (`requester.create_request` then `submit`, `ending.cancel` leg by
leg) re-read rows they had just written and wrote one row per statement. Here the same
rows are written with what the operation already knows:

- `create_sent` (a request that is neither a draft nor interstate, so it cannot be held
  for approval): the activation is inserted in its final `requested` state, the messages
  queued first (one outbox insert) so each leg row carries its `request_msg_id`, the legs
  in one insert and the whole history (`draft`, `requested`, one `requested` per leg) in
  one multi-row insert. Five statements instead of nineteen.
- `load` + `cancel_out` (the requester's side): the activation, its legs and its
  approval state in one query; every message (cancels, the hub reports) in one outbox
  insert; the legs moved in one conditional update naming each leg's state (a concurrent
  change matches fewer rows and the operation is refused with `conflict`, as
  `writes.apply_leg` does); the own state; the history in one insert. Six instead of
  eighteen.

On PostgreSQL, with the federation service's row stager (`ActivationContext.stage_many`),
the writes of each are one statement (`node.activation.batched_pg`): a request is then
two statements in its transaction (with the API's audit entry), a cancel three. The API
goes further (`one_statement`, `autocommit`): the audit entry joins that statement and
the statement is the whole transaction (no BEGIN, no COMMIT round trip), so a request is
one round trip and a cancel two (its read, then the statement; a leg moved between them
fails the statement as a whole, `conflict`).

Legs are ordered by responder in Python (`sorted`, code point order) where the
step-by-step path read them back `ORDER BY responder`: the same order on SQLite and on a
PostgreSQL database with the C collation (the throwaway server's); under a linguistic
collation two names differing only in punctuation or case could be listed in another
order (the answer's `legs`, the hub report's `responders`), never other contents.

Same outcome as the step-by-step path, row for row: the same checks in the same order
(a refusal writes nothing), the same values, the same history rows in the same order,
the same messages queued in the same order (the outbox's insertion order), and the same
answer (`views.view_of` over the rows written; legs in responder order, as `legs_of`
reads them). `tests/activations/test_batched.py` runs both paths on SQLite and
PostgreSQL and compares every row and the answers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.database import Database
from federation.prepared import Prepared
from node.activation import batched_pg
from node.activation.approval import APPROVALS
from node.activation.context import ActivationContext, Db, Message, Stager, dialect_of
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.models import ActivationOut
from node.activation.rows import A, ActRow, E, L, LegRow, S, json_text
from node.activation.states import OPEN_STATES, Event
from node.activation.views import overall_state, view_of
from node.activation.writes import report_message, set_own_state, step_or_refuse
from protocol.activation_bodies import ActivationCancelBody, ActivationRequestBody
from protocol.messages import MessageType
from protocol.vocabulary import CancelReason
from protocol.wire_types import wire_json

__all__ = ["Audit", "autocommit", "cancel_out", "create_sent", "load", "one_statement", "queue"]

_INSERT_ACT = Prepared(insert(A))
_INSERT_LEGS = Prepared(insert(L))
_INSERT_EVENTS = Prepared(insert(E))

# The activation (each of its legs, in responder order) and its approval state, one query.
_LEG_COLS = [c.label(f"l_{c.name}") for c in L.c]
_APPROVAL = (
    select(APPROVALS.c.state).where(APPROVALS.c.activation_key == A.c.key).scalar_subquery()
)
_SNAPSHOT = select(A, *_LEG_COLS, _APPROVAL.label("approval_state")).select_from(
    A.outerjoin(L, L.c.activation_key == A.c.key)
)
_LOAD_STMT = _SNAPSHOT.where(A.c.activation_id == bindparam("b_aid")).order_by(
    A.c.key, L.c.responder)
_LOAD_BY_STMT = _SNAPSHOT.where(
    A.c.activation_id == bindparam("b_aid"), A.c.requester == bindparam("b_req")
).order_by(A.c.key, L.c.responder)
_LOAD = Prepared(_LOAD_STMT)
_LOAD_BY = Prepared(_LOAD_BY_STMT)
_DIRECT: dict[bool, tuple[str, list[str]]] = {}  # the two as asyncpg SQL, their parameters
# Legs moved together: one statement per number of legs, each leg named with its state.
_MOVES: dict[int, Prepared] = {}


def _moves(n: int) -> Prepared:
    stmt = _MOVES.get(n)
    if stmt is None:
        stmt = _MOVES[n] = Prepared(update(L).where(or_(*(
            and_(L.c.id == bindparam(f"b_id{i}"), L.c.state == bindparam(f"b_from{i}"))
            for i in range(n)
        ))))
    return stmt


async def queue(db: Db, ctx: ActivationContext, messages: Sequence[Message]) -> list[str]:
    """Queue `messages` in order in the caller's transaction (one insert when the context
    can); their msg_ids."""
    if ctx.send_many is not None:
        return await ctx.send_many(db, messages)
    return [
        await ctx.send(db, m[0], m[1], m[2], thread_id=m[3],
                       in_reply_to=m[4] if len(m) > 4 else None)
        for m in messages
    ]


# The unlinked audit entry (`audit_entry.entry_row`) of an operation's answer.
Audit = Callable[[ActivationOut], dict[str, Any]]


def _changed() -> ActivationError:
    """A row moved by another transaction meanwhile (as `writes.require_one_row`)."""
    return ActivationError(ActivationCode.CONFLICT, "the activation changed meanwhile: try again",
                           "state")


def _event(act: ActRow, state: S, responder: str | None, actor: str, msg_id: str | None,
           ts: int) -> dict[str, Any]:
    return {"activation_key": act.key, "responder": responder, "state": state.value,
            "actor_node": actor, "msg_id": msg_id, "ts": ts, "note": None}


def _stager(db: Db, ctx: ActivationContext) -> Stager | None:
    """PostgreSQL with the service's row stager: the one-statement writes (`batched_pg`)."""
    return ctx.stage_many if dialect_of(db) == "postgresql" else None


def one_statement(db: Database, ctx: ActivationContext) -> bool:
    """Whether `create_sent` and `cancel_out` write in one statement on `db` (PostgreSQL
    and a row stager): then they may run on an `autocommit` connection with their `audit`
    entry, and that statement is the whole transaction."""
    return not db.is_sqlite and ctx.stage_many is not None


@contextlib.asynccontextmanager
async def autocommit(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection with no transaction around its statements (no BEGIN and COMMIT round
    trips): for `one_statement` writes, each its own transaction. On success its `commit`
    (no round trip in autocommit) still fires what waits for one (the outbox worker's
    wake-up, `FederationService.stage_many`)."""
    async with db.engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.commit()


def _staged(audit: Audit | None, out: ActivationOut) -> dict[str, Any] | None:
    return batched_pg.staged_row(audit(out)) if audit is not None else None


async def create_sent(
    db: Db, ctx: ActivationContext, *, aid: str, key: uuid.UUID,
    body: ActivationRequestBody, targets: list[str], user_id: uuid.UUID | None, now: int,
    audit: Audit | None = None,
) -> ActivationOut:
    """A new activation to home agencies `targets`, sent at once (module notes): what
    `create_request` then `submit` store, written directly. `audit` (the one-statement
    path only, `one_statement`): the unlinked audit entry of the answer, written with it."""
    act = ActRow(key=key, activation_id=aid, requester=ctx.node_id, side=Side.OUT,
                 own_state=S.REQUESTED, request=body, expires_ts=body.expires_ts,
                 coordinator_id=user_id, created_at=now, updated_at=now)
    request = wire_json(body)
    act_values = {
        "key": key, "activation_id": aid, "requester": ctx.node_id, "side": Side.OUT.value,
        "own_state": S.REQUESTED.value, "request": json_text(request),
        "incident_ref": body.incident_ref, "incident_type": body.incident_type.value,
        "event_ts": body.event_ts, "expires_ts": body.expires_ts,
        "peers_needed": body.peers_needed, "affected_total": sum(body.affected.values()),
        "coordinator_id": user_id, "created_at": now, "updated_at": now,
    }
    ordered = sorted(targets)  # as `legs_of` reads them
    own_report = report_message(ctx, act, S.REQUESTED, responder=None, peers_offered=0,
                                responders=ordered or None)
    msgs: list[Message] = [own_report] if own_report is not None else []
    msgs += [(t, MessageType.ACTIVATION_REQUEST, request, aid) for t in ordered]
    stage = _stager(db, ctx)
    if stage is not None:
        queued = stage(db, msgs)
        ids = [str(r["msg_id"]) for r in queued]
    else:
        await _INSERT_ACT.run(db, act_values)
        ids = await queue(db, ctx, msgs)
    mids = ids[len(ids) - len(ordered):]
    legs = [
        LegRow(id=uuid.uuid4(), responder=t, state=S.REQUESTED, request_msg_id=mid,
               offer_msg_id=None, offer=None, offer_peers=0, accept_msg_id=None,
               decline_reason=None, declined_by=None, cancel_reason=None, cancelled_by=None,
               updated_at=now)
        for t, mid in zip(ordered, mids, strict=True)
    ]
    leg_values = [
        {"id": leg.id, "activation_key": key, "responder": leg.responder,
         "state": S.REQUESTED.value, "request_msg_id": leg.request_msg_id,
         "offer_peers": 0, "updated_at": now}
        for leg in legs
    ]
    me = ctx.node_id
    events = [
        _event(act, S.DRAFT, None, me, None, now),
        _event(act, S.REQUESTED, None, me, None, now),
        *(_event(act, S.REQUESTED, leg.responder, me, leg.request_msg_id, now) for leg in legs),
    ]
    out = view_of(ctx, act, legs, None)
    if stage is not None:
        await batched_pg.run(db, *batched_pg.create_statement(
            act_values, leg_values, events, queued, _staged(audit, out)))
    else:
        if leg_values:
            await _INSERT_LEGS.run(db, leg_values)
        await _INSERT_EVENTS.run(db, events)
    return out


async def load(db: Db, activation_id: str,
               requester: str | None = None) -> tuple[ActRow, list[LegRow], str | None]:
    """The activation with this id, its legs (responder order) and its approval state, in
    one query; refusals as `rows.find`."""
    params = {"b_aid": activation_id}
    if requester is not None:
        params["b_req"] = requester
    rows = await _snapshot(db, params)
    if not rows:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such activation", "activation_id")
    if any(r.key != rows[0].key for r in rows):
        raise ActivationError(
            ActivationCode.CONFLICT, "several activations have this id: name the requester",
            "requester",
        )
    legs = [
        LegRow.of(SimpleNamespace(**{c.name: getattr(r, f"l_{c.name}") for c in L.c}))  # type: ignore[arg-type]
        for r in rows if r.l_id is not None
    ]
    return ActRow.of(rows[0]), legs, rows[0].approval_state


async def _snapshot(db: Db, params: dict[str, str]) -> list[Any]:
    """`load`'s rows. In autocommit (the API's cancel) the query goes to asyncpg directly,
    as the write after it does (`batched_pg.run`): SQLAlchemy's execution and result
    processing cost more of the event loop than the query; the values are the same (the
    enum columns as their strings, which the row types convert)."""
    by = "b_req" in params
    driver = await batched_pg.direct_driver(db) if isinstance(db, AsyncConnection) else None
    if driver is None or not isinstance(db, AsyncConnection):
        return list((await (_LOAD_BY if by else _LOAD).run(db, params)).all())
    direct = _DIRECT.get(by)
    if direct is None:
        compiled = (_LOAD_BY_STMT if by else _LOAD_STMT).compile(dialect=db.dialect)
        direct = _DIRECT[by] = (str(compiled), list(compiled.positiontup or ()))
    records = await batched_pg.fetch_direct(db, driver, direct[0],
                                            *(params[n] for n in direct[1]))
    return [SimpleNamespace(**dict(r.items())) for r in records]


async def cancel_out(
    db: Db, ctx: ActivationContext, act: ActRow, legs: list[LegRow], approval: str | None,
    reason: CancelReason, *, responder: str | None, audit: Audit | None = None,
) -> ActivationOut:
    """The requester calls off the activation (or the leg of `responder`): `ending.cancel`'s
    outcome in few statements (module notes). `audit` as for `create_sent`."""
    own: S | None = None
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
    news = [step_or_refuse(leg.state, Event.CANCEL, f"the request to {leg.responder}")
            for leg in chosen]
    now = ctx.now()
    me = ctx.node_id
    # The messages in `ending.cancel`'s order: per leg its cancel (not for a draft leg) and
    # its report, then the activation's own report.
    cancel_body = wire_json(ActivationCancelBody(reason=reason))
    msgs: list[Message] = []
    cancel_at: dict[int, int] = {}
    for i, (leg, new) in enumerate(zip(chosen, news, strict=True)):
        if leg.state is not S.DRAFT:
            cancel_at[i] = len(msgs)
            msgs.append((leg.responder, MessageType.ACTIVATION_CANCEL, cancel_body,
                         act.activation_id, leg.request_msg_id))
        rep = report_message(ctx, act, new, responder=leg.responder,
                             peers_offered=leg.offer_peers)
        if rep is not None:
            msgs.append(rep)
    if own is not None:
        rep = report_message(ctx, act, own, responder=None,
                             peers_offered=sum(x.offer_peers for x in legs))
        if rep is not None:
            msgs.append(rep)
    stage = _stager(db, ctx)
    if stage is not None:
        queued = stage(db, msgs) if msgs else []
        ids = [str(r["msg_id"]) for r in queued]
    else:
        ids = await queue(db, ctx, msgs) if msgs else []
    values = {"cancel_reason": reason.value, "cancelled_by": me, "updated_at": now}
    events = [
        _event(act, new, leg.responder, me, ids[cancel_at[i]] if i in cancel_at else None, now)
        for i, (leg, new) in enumerate(zip(chosen, news, strict=True))
    ]
    if own is not None:
        events.append(_event(act, own, None, me, None, now))
    moved = {leg.id: new for leg, new in zip(chosen, news, strict=True)}
    after = [
        replace(leg, state=moved[leg.id], cancel_reason=reason.value, cancelled_by=me,
                updated_at=now) if leg.id in moved else leg
        for leg in legs
    ]
    out = view_of(ctx, replace(act, own_state=own, updated_at=now) if own is not None else act,
                  after, approval)
    if stage is not None:
        await batched_pg.run(db, *batched_pg.cancel_statement(
            [(leg.id, leg.state.value) for leg in chosen],
            {"state": S.CANCELLED.value, **values},
            (act.key, act.own_state.value, own.value) if own is not None else None,
            events, queued, _staged(audit, out)))
    else:
        if chosen:
            params: dict[str, Any] = {"state": S.CANCELLED.value, **values}
            for i, leg in enumerate(chosen):
                params[f"b_id{i}"] = leg.id
                params[f"b_from{i}"] = leg.state.value
            res = await _moves(len(chosen)).run(db, params)
            if res.rowcount != len(chosen):
                raise _changed()
        if own is not None:
            await set_own_state(db, ctx, act, own, cancel_reason=reason.value)
        if events:
            await _INSERT_EVENTS.run(db, events)
    return out
