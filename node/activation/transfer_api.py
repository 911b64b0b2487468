"""JSON API of the consented follow-up transfer (issue 21; coordinators only).

    POST /api/v1/follow-ups/{id}/transfer-consent   record the responder's consent (to)
    POST /api/v1/follow-ups/{id}/transfer           send (needs that consent)
    GET  /api/v1/transfers                          sent and received transfers
    POST /api/v1/transfers/{id}/accept              assign an owner on my team
    POST /api/v1/transfers/{id}/decline             decline with a fixed reason

Each unsafe call is one write transaction: rows, outbox row and an audit entry (ids, the
agency and the outcome; never the note) commit together. Reading a received note is
audited like a hand-off note (`handoff.read`).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from node.activation import transfer
from node.activation.api import activation_context
from node.activation.errors import ActivationCode, ActivationError
from node.activation.transfer_models import (
    ConsentIn,
    ConsentOut,
    TransferAcceptIn,
    TransferDeclineIn,
    TransferIn,
    TransferList,
    TransferOut,
)
from node.core import audit
from node.core.access import Principal
from node.core.appkeys import DB
from node.core.paging import Cursor, page_of
from node.core.routes import Route, add_routes
from node.core.vocabulary import Role
from node.web.api import query_params
from node.web.plumbing import json_body, principal

__all__ = ["TransferQuery", "audit_note_reads", "setup_transfer_api", "transfer_routes"]

COORDINATOR = frozenset({Role.COORDINATOR})


class TransferQuery(BaseModel):
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


def _id(request: web.Request, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ActivationError(ActivationCode.NOT_FOUND, f"no such {what}", "id") from None


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status,
                        content_type="application/json")


async def _audit(conn: Any, now: int, p: Principal, action: str, target_type: str,
                 target: Any, **detail: Any) -> None:
    await audit.append(conn, ts=now, action=action, actor=p, target_type=target_type,
                       target_id=target, detail=detail)


async def audit_note_reads(conn: Any, now: int, p: Principal, items: list[TransferOut]) -> None:
    for t in items:
        if t.contact_note is not None:
            await _audit(conn, now, p, "handoff.read", "transfer", t.id)


async def consent(request: web.Request) -> web.Response:
    data = await json_body(request, ConsentIn)
    ctx, p, fid = activation_context(request.app), principal(request), _id(request, "follow-up")
    async with request.app[DB].write() as conn:
        out = await transfer.record_consent(conn, ctx, fid, data.to, user_id=p.user_id,
                                            team=p.team)
        await _audit(conn, ctx.now(), p, "transfer.consent", "follow_up", fid, to=data.to)
    return _dump(out, 201)


async def send(request: web.Request) -> web.Response:
    data = await json_body(request, TransferIn)
    ctx, p, fid = activation_context(request.app), principal(request), _id(request, "follow-up")
    async with request.app[DB].write() as conn:
        out = await transfer.send_transfer(conn, ctx, fid, data, user_id=p.user_id, team=p.team)
        await _audit(conn, ctx.now(), p, "transfer.send", "follow_up", fid, to=data.to,
                     transfer=out.id)
    return _dump(out, 201)


async def list_view(request: web.Request) -> web.Response:
    q = query_params(request, TransferQuery)
    ctx, p = activation_context(request.app), principal(request)
    async with request.app[DB].write() as conn:
        items = await transfer.list_transfers(conn, ctx, p.user_id)
        page, nxt = page_of(items, q.cursor, q.limit)
        await audit_note_reads(conn, ctx.now(), p, page)
    return _dump(TransferList(items=page, next_cursor=nxt))


async def accept(request: web.Request) -> web.Response:
    data = await json_body(request, TransferAcceptIn)
    ctx, p, tid = activation_context(request.app), principal(request), _id(request, "transfer")
    async with request.app[DB].write() as conn:
        out = await transfer.answer(conn, ctx, tid, p.user_id, owner=data.owner)
        await _audit(conn, ctx.now(), p, "transfer.accept", "transfer", tid,
                     owner=str(data.owner))
    return _dump(out)


async def decline(request: web.Request) -> web.Response:
    data = await json_body(request, TransferDeclineIn)
    ctx, p, tid = activation_context(request.app), principal(request), _id(request, "transfer")
    async with request.app[DB].write() as conn:
        out = await transfer.answer(conn, ctx, tid, p.user_id, reason=data.reason)
        await _audit(conn, ctx.now(), p, "transfer.decline", "transfer", tid,
                     reason=data.reason.value)
    return _dump(out)


def transfer_routes() -> list[Route]:
    c, t = COORDINATOR, ("transfers",)
    f, x = "/api/v1/follow-ups/{id}", "/api/v1/transfers"
    return [
        Route("POST", f"{f}/transfer-consent", consent, "api.transfers.consent", c,
              "Record the responder's consent to transfer a follow-up to an agency",
              body=ConsentIn, response=ConsentOut, status=201, tags=t),
        Route("POST", f"{f}/transfer", send, "api.transfers.send", c,
              "Transfer an open follow-up to another member agency (needs consent)",
              body=TransferIn, response=TransferOut, status=201, tags=t),
        Route("GET", x, list_view, "api.transfers.list", c,
              "Follow-up transfers sent and received (notes only for the assigned coordinator)",
              query=TransferQuery, response=TransferList, tags=t),
        Route("POST", f"{x}/{{id}}/accept", accept, "api.transfers.accept", c,
              "Accept a received transfer and assign an owner on my team",
              body=TransferAcceptIn, response=TransferOut, tags=t),
        Route("POST", f"{x}/{{id}}/decline", decline, "api.transfers.decline", c,
              "Decline a received transfer with a reason", body=TransferDeclineIn,
              response=TransferOut, tags=t),
    ]


def setup_transfer_api(app: web.Application) -> None:
    add_routes(app, transfer_routes())
