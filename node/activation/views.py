"""Activation views: what the API, the pages and the CLI show of activations (read only).

`view`/`get` build one `ActivationOut` (the activation, its legs, the timing warnings of
its request); `list_activations` the summaries of the newest ones; `targets` the agencies
of the roster this node may ask. `overall_state` is the activation's state as both sides
see it: its own state summarized with its legs' (`activation_states.summarize`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select

from node.activation.approval import approval_of
from node.activation.context import ActivationContext, Db
from node.activation.db import Side
from node.activation.guardrails import timing_warnings
from node.activation.models import (
    ActivationOut,
    ActivationSummary,
    LegOut,
    OfferOut,
    RequestOut,
    TargetOut,
    WarningOut,
)
from node.activation.rows import A, ActRow, L, LegRow, find, legs_of
from node.activation.states import summarize
from protocol.activation_bodies import ActivationRequestBody
from protocol.vocabulary import ActivationState
from protocol.wire_types import wire_json

__all__ = [
    "get",
    "list_activations",
    "overall_state",
    "targets",
    "view",
    "view_of",
]


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


def overall_state(act: ActRow, legs: Iterable[LegRow]) -> ActivationState:
    return summarize(act.own_state, [leg.state for leg in legs])


def own_part(act: ActRow, legs: list[LegRow]) -> ActivationState:
    """Where this node's own part stands. The `own_state` column holds only the steps of the
    activation itself (draft, requested, cancelled, closed): offers and acceptances live on
    the legs, so shown raw it stayed `requested` after an accept. A responder's part is its
    one leg; a requester's part is the activation as a whole."""
    if act.side is Side.IN and legs:
        return summarize(act.own_state, [legs[0].state])
    return overall_state(act, legs)


async def view(db: Db, ctx: ActivationContext, act: ActRow) -> ActivationOut:
    return view_of(ctx, act, await legs_of(db, act.key), await approval_of(db, act.key))


def view_of(ctx: ActivationContext, act: ActRow, legs: list[LegRow],
            approval: str | None) -> ActivationOut:
    """`view` of rows the caller already holds (`legs` in responder order, as `legs_of`
    reads them), with no read: the batched writes (`node.activation.batched`) know every
    row they wrote."""
    return ActivationOut(
        activation_id=act.activation_id,
        requester=act.requester,
        side=act.side.value,
        state=overall_state(act, legs),
        own_state=own_part(act, legs),
        request=_request_out(act.request),
        legs=[_leg_out(leg) for leg in legs],
        warnings=_warnings(ctx, act.request),
        approval=approval,
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
                state=overall_state(a, legs),
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
