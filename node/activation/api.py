"""JSON API of interagency activation under /api/v1/activations (coordinators only).

    GET  /api/v1/activations                      list (?side=in|out)
    POST /api/v1/activations                      new request (draft, or sent to targets)
    GET  /api/v1/activations/targets              agencies to ask (?discipline=&region=)
    GET  /api/v1/activations/handoffs             follow-ups handed to/from this node
    POST /api/v1/activations/handoffs/{id}/complete   done; the note is purged
    GET  /api/v1/activations/{activation_id}      one activation with its legs and warnings
    POST /api/v1/activations/{activation_id}/submit|offer|accept|decline|update|cancel|close
    POST /api/v1/activations/{activation_id}/handoffs  hand a follow-up to the other agency

Each unsafe call is one write transaction: rows, history, outbox rows and an audit entry
commit together (the audit detail holds ids and states, never contents). Refusals are the
codes of `node.activation.errors` (e.g. 409 `illegal_transition`), or the node's own
(`forbidden`, `invalid_input`, ...).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from node.activation import batched, ending, handoff, views
from node.activation import requester as requesting
from node.activation import responder as responding
from node.activation import rows as act_rows
from node.activation.context import ActivationContext
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.interstate import PeerName, is_qualified
from node.activation.list_filter import filtered
from node.activation.models import (
    AcceptIn,
    AcceptOut,
    ActivationOut,
    ActivationSummary,
    CancelIn,
    DeclineIn,
    HandoffIn,
    HandoffOut,
    OfferIn,
    RequestIn,
    TargetOut,
    UpdateIn,
)
from node.core import audit
from node.core.access import Principal
from node.core.appkeys import DB, SETTINGS
from node.core.audit_entry import entry_row
from node.core.db import Database
from node.core.paging import Cursor, NextCursor, page_of
from node.core.routes import Route, add_routes
from node.core.vocabulary import Role
from node.records.list_filters import check_range
from node.web.api import query_params
from node.web.plumbing import json_body, principal
from protocol.ids import is_msg_id
from protocol.vocabulary import ActivationState, Discipline

__all__ = [
    "ACTIVATIONS",
    "ActivationList",
    "ActivationQuery",
    "HandoffList",
    "HandoffQuery",
    "ListQuery",
    "TargetList",
    "TargetQuery",
    "activation_context",
    "api_routes",
]

P = "/api/v1/activations"
COORDINATOR = frozenset({Role.COORDINATOR})
ACTIVATIONS = web.AppKey("peernet_activations", ActivationContext)


class ListQuery(BaseModel):
    side: Side | None = None
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None
    since: date | None = Field(default=None, description="Incident on or after this day "
                               "(node time zone)")
    until: date | None = Field(default=None, description="Incident on or before this day "
                               "(node time zone)")
    status: ActivationState | None = Field(default=None, description="Overall state")
    discipline: Discipline | None = Field(default=None, description="Affected personnel "
                                          "of this discipline")


class ActivationQuery(BaseModel):
    requester: PeerName | None = None  # a node id, or `<network>/<node_id>` (interstate)


class TargetQuery(BaseModel):
    discipline: Discipline | None = None
    region: str | None = Field(default=None, max_length=80)
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


class HandoffQuery(BaseModel):
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


class ActivationList(BaseModel):
    items: list[ActivationSummary]
    next_cursor: NextCursor = None
    total: int | None = Field(default=None, description="Activations matching the filters")


class TargetList(BaseModel):
    items: list[TargetOut]
    next_cursor: NextCursor = None


class HandoffList(BaseModel):
    items: list[HandoffOut]
    next_cursor: NextCursor = None


def activation_context(app: web.Application) -> ActivationContext:
    if ACTIVATIONS not in app:
        raise ActivationError(
            ActivationCode.CONFLICT, "federation is not configured on this node"
        )
    return app[ACTIVATIONS]


def _aid(request: web.Request) -> str:
    aid = request.match_info["activation_id"]
    if not is_msg_id(aid):
        raise ActivationError(ActivationCode.NOT_FOUND, "no such activation", "activation_id")
    return aid


def _requester(request: web.Request) -> str | None:
    return query_params(request, ActivationQuery).requester


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status,
                        content_type="application/json")


async def _audit(conn: Any, ctx: ActivationContext, p: Principal, action: str, target: str,
                 **detail: Any) -> None:
    await audit.append(conn, ts=ctx.now(), action=action, actor=p, target_type="activation",
                       target_id=target, detail=detail)


def _db(request: web.Request) -> Database:
    return request.app[DB]


async def list_view(request: web.Request) -> web.Response:
    q = query_params(request, ListQuery)
    check_range(q.since, q.until)
    ctx = activation_context(request.app)
    async with _db(request).read() as conn:
        items = await filtered(conn, ctx, request.app[SETTINGS].zone, side=q.side,
                               since=q.since, until=q.until, status=q.status,
                               discipline=q.discipline)
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(ActivationList(items=page, next_cursor=nxt, total=len(items)))


def _entry(ctx: ActivationContext, p: Principal, action: str, target: str,
           **detail: Any) -> dict[str, Any]:
    """What `_audit` appends, as the unlinked entry a one-statement write stores."""
    return entry_row(ctx.now(), action, p, "activation", target, "ok", detail)


async def create(request: web.Request) -> web.Response:
    data = await json_body(request, RequestIn)
    ctx = activation_context(request.app)
    p = principal(request)
    db = _db(request)
    if not data.draft and batched.one_statement(db, ctx):
        targets, body, now = requesting.checked_request(ctx, data)
        if not any(is_qualified(t) for t in targets):  # never held: one statement, audited
            async with batched.autocommit(db) as conn:
                out = await batched.create_sent(
                    conn, ctx, aid=ctx.new_id(), key=uuid.uuid4(), body=body, targets=targets,
                    user_id=p.user_id, now=now,
                    audit=lambda o: _entry(ctx, p, "activation.request", o.activation_id,
                                           state=o.state.value, targets=len(o.legs)))
            return _dump(out, 201)
    async with db.write() as conn:
        out = await requesting.create_request(conn, ctx, data, user_id=p.user_id)
        await _audit(conn, ctx, p, "activation.request", out.activation_id,
                     state=out.state.value, targets=len(out.legs))
    return _dump(out, 201)


async def targets_view(request: web.Request) -> web.Response:
    q = query_params(request, TargetQuery)
    ctx = activation_context(request.app)
    items = views.targets(ctx, discipline=q.discipline.value if q.discipline else None,
                        region=q.region or None)
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(TargetList(items=page, next_cursor=nxt))


async def get_view(request: web.Request) -> web.Response:
    ctx = activation_context(request.app)
    async with _db(request).read() as conn:
        out = await views.get(conn, ctx, _aid(request), _requester(request))
    return _dump(out)


async def _act(request: web.Request, action: str, op: Any) -> ActivationOut:
    ctx = activation_context(request.app)
    p = principal(request)
    aid = _aid(request)
    requester = _requester(request)
    async with _db(request).write() as conn:
        out: ActivationOut = await op(conn, ctx, aid, requester)
        await _audit(conn, ctx, p, action, aid, state=out.state.value)
    return out


async def submit(request: web.Request) -> web.Response:
    async def op(conn: Any, ctx: ActivationContext, aid: str, _r: str | None) -> ActivationOut:
        return await requesting.submit(conn, ctx, aid)

    return _dump(await _act(request, "activation.submit", op))


async def offer(request: web.Request) -> web.Response:
    data = await json_body(request, OfferIn)
    uid = principal(request).user_id

    async def op(conn: Any, ctx: ActivationContext, aid: str, r: str | None) -> ActivationOut:
        return await responding.make_offer(conn, ctx, aid, data, requester=r, user_id=uid)

    return _dump(await _act(request, "activation.offer", op))


async def accept(request: web.Request) -> web.Response:
    data = await json_body(request, AcceptIn)
    ctx = activation_context(request.app)
    p = principal(request)
    aid = _aid(request)
    async with _db(request).write() as conn:
        out = await requesting.accept_offer(conn, ctx, aid, data.offer_msg_id)
        if not out.repeated:
            await _audit(conn, ctx, p, "activation.accept", aid, responder=out.responder)
    return _dump(out)


async def decline(request: web.Request) -> web.Response:
    data = await json_body(request, DeclineIn)

    async def op(conn: Any, ctx: ActivationContext, aid: str, r: str | None) -> ActivationOut:
        act = await act_rows.find(conn, aid, r)
        if act.side is Side.OUT:
            if data.responder is None:
                raise ActivationError(ActivationCode.INVALID_INPUT,
                                      "name the responder whose offer you decline", "responder")
            return await requesting.decline_offer(conn, ctx, aid, data.responder, data.reason)
        return await responding.decline_request(conn, ctx, aid, data.reason, requester=r)

    return _dump(await _act(request, "activation.decline", op))


async def update(request: web.Request) -> web.Response:
    data = await json_body(request, UpdateIn)

    async def op(conn: Any, ctx: ActivationContext, aid: str, r: str | None) -> ActivationOut:
        return await responding.send_update(conn, ctx, aid, data.stage, requester=r)

    return _dump(await _act(request, "activation.update", op))


async def cancel(request: web.Request) -> web.Response:
    data = await json_body(request, CancelIn)
    ctx = activation_context(request.app)
    db = _db(request)
    if batched.one_statement(db, ctx):
        p, aid = principal(request), _aid(request)
        async with batched.autocommit(db) as conn:
            act, legs, approval = await batched.load(conn, aid, _requester(request))
            if act.side is Side.OUT:  # the requester's: one statement after the read, audited
                return _dump(await batched.cancel_out(
                    conn, ctx, act, legs, approval, data.reason, responder=data.responder,
                    audit=lambda o: _entry(ctx, p, "activation.cancel", aid,
                                           state=o.state.value)))

    async def op(conn: Any, ctx: ActivationContext, aid: str, r: str | None) -> ActivationOut:
        return await ending.cancel(conn, ctx, aid, data.reason, requester=r,
                                responder=data.responder)

    return _dump(await _act(request, "activation.cancel", op))


async def close(request: web.Request) -> web.Response:
    async def op(conn: Any, ctx: ActivationContext, aid: str, r: str | None) -> ActivationOut:
        return await ending.close(conn, ctx, aid, requester=r)

    return _dump(await _act(request, "activation.close", op))


async def handoff_send(request: web.Request) -> web.Response:
    data = await json_body(request, HandoffIn)
    ctx = activation_context(request.app)
    p = principal(request)
    aid = _aid(request)
    async with _db(request).write() as conn:
        out = await handoff.send_handoff(conn, ctx, aid, data, requester=_requester(request))
        await _audit(conn, ctx, p, "handoff.send", aid, to=data.to)
    return _dump(out, 201)


async def handoff_list(request: web.Request) -> web.Response:
    q = query_params(request, HandoffQuery)
    ctx = activation_context(request.app)
    p = principal(request)
    async with _db(request).write() as conn:
        items, nxt = page_of(await handoff.handoff_inbox(conn, ctx, p.user_id), q.cursor,
                             q.limit)
        for h in items:
            if h.contact_note is not None:  # reading a note is audited (its id only)
                await audit.append(conn, ts=ctx.now(), action="handoff.read", actor=p,
                                   target_type="handoff", target_id=h.id, detail={})
    return _dump(HandoffList(items=items, next_cursor=nxt))


async def handoff_complete(request: web.Request) -> web.Response:
    ctx = activation_context(request.app)
    p = principal(request)
    try:
        hid = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ActivationError(ActivationCode.NOT_FOUND, "no such hand-off", "id") from None
    async with _db(request).write() as conn:
        out = await handoff.complete(conn, ctx, hid, p.user_id)
        await audit.append(conn, ts=ctx.now(), action="handoff.complete", actor=p,
                           target_type="handoff", target_id=hid, detail={})
    return _dump(out)


def api_routes() -> list[Route]:
    c = COORDINATOR
    t = ("activations",)
    a = f"{P}/{{activation_id}}"
    return [
        Route("GET", P, list_view, "api.activations.list", c, "Activations (in and out)",
              query=ListQuery, response=ActivationList, tags=t),
        Route("POST", P, create, "api.activations.create", c,
              "Request peer support from other agencies", body=RequestIn,
              response=ActivationOut, status=201, tags=t),
        Route("GET", f"{P}/targets", targets_view, "api.activations.targets", c,
              "Agencies this node may ask, by discipline and region", query=TargetQuery,
              response=TargetList, tags=t),
        Route("GET", f"{P}/handoffs", handoff_list, "api.activations.handoffs", c,
              "Follow-up hand-offs (notes only for the assigned coordinator)",
              query=HandoffQuery, response=HandoffList, tags=t),
        Route("POST", f"{P}/handoffs/{{id}}/complete", handoff_complete,
              "api.activations.handoffs.complete", c,
              "Complete a handed-off follow-up (purges its note)", response=HandoffOut, tags=t),
        Route("GET", a, get_view, "api.activations.get", c, "One activation",
              query=ActivationQuery, response=ActivationOut, tags=t),
        Route("POST", f"{a}/submit", submit, "api.activations.submit", c, "Send a draft",
              response=ActivationOut, tags=t),
        Route("POST", f"{a}/offer", offer, "api.activations.offer", c,
              "Offer peers (counts by discipline)", body=OfferIn, response=ActivationOut,
              tags=t),
        Route("POST", f"{a}/accept", accept, "api.activations.accept", c,
              "Accept an offer (idempotent)", body=AcceptIn, response=AcceptOut, tags=t),
        Route("POST", f"{a}/decline", decline, "api.activations.decline", c,
              "Decline a request (responder) or an offer (requester)", body=DeclineIn,
              response=ActivationOut, tags=t),
        Route("POST", f"{a}/update", update, "api.activations.update", c,
              "Report mobilized, on scene or demobilized", body=UpdateIn,
              response=ActivationOut, tags=t),
        Route("POST", f"{a}/cancel", cancel, "api.activations.cancel", c,
              "Cancel (any open state)", body=CancelIn, response=ActivationOut, tags=t),
        Route("POST", f"{a}/close", close, "api.activations.close", c,
              "Close after demobilization", response=ActivationOut, tags=t),
        Route("POST", f"{a}/handoffs", handoff_send, "api.activations.handoffs.send", c,
              "Hand a follow-up to the other agency", body=HandoffIn, response=HandoffOut,
              status=201, tags=t),
    ]


def setup_api(app: web.Application) -> None:
    add_routes(app, api_routes())
