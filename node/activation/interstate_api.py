"""JSON API of interstate activation (issue 19 item 4), beside `node.activation.api`:

    GET  /api/v1/activations/interstate/directory?network=hi&discipline=&region=
         agencies of another member network (coordinators), from that network's roster as
         this node holds it: fetched through its own hub, verified here against the compact
         (`node.activation.interstate_directory`); `node_id` is the qualified name to use
         as a request target
    GET  /api/v1/activations/interstate/policy     the approval policy (coordinators, admins)
    PUT  /api/v1/activations/interstate/policy     set it (admins)
    POST /api/v1/activations/{activation_id}/approve   approve a held interstate activation
         (an admin, or a coordinator the policy names); an outgoing one is sent at once

Refusals: `unknown_network` 404, `network_not_in_compact` 403, `foreign_roster_invalid`
409 (no verified roster of that network yet: the node has asked its hub, try again),
`approval_required`, `forbidden`, `illegal_transition`, `invalid_input` (the activation
room's table). Each unsafe call is one write transaction with its audit entry (ids only).
Rules and the decision on where the policy lives: `node.activation.approval`.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from node.activation import approval, rows, views
from node.activation import requester as requesting
from node.activation.api import ActivationQuery, _aid, _dump, activation_context
from node.activation.context import ActivationContext
from node.activation.db import Side
from node.activation.errors import ActivationCode, ActivationError
from node.activation.models import ActivationOut, TargetOut
from node.core import audit
from node.core.access import Principal
from node.core.appkeys import DB
from node.core.paging import Cursor, NextCursor, page_of
from node.core.routes import Route, add_routes
from node.core.vocabulary import Role
from node.web.api import query_params
from node.web.plumbing import json_body, principal
from protocol.errors import ProtocolError
from protocol.ids import NetworkId
from protocol.vocabulary import Discipline

__all__ = ["DirectoryQuery", "InterstateDirectoryOut", "PolicyIn", "PolicyOut",
           "approve_activation", "foreign_targets", "interstate_routes",
           "setup_interstate_api"]

P = "/api/v1/activations"
COORDINATOR = frozenset({Role.COORDINATOR})
APPROVERS = frozenset({Role.COORDINATOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

_CODES = {
    "unknown_network": ActivationCode.UNKNOWN_NETWORK,
    "network_not_in_compact": ActivationCode.NETWORK_NOT_IN_COMPACT,
}


class DirectoryQuery(BaseModel):
    network: NetworkId
    discipline: Discipline | None = None
    region: str | None = Field(default=None, max_length=80)
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


class InterstateDirectoryOut(BaseModel):
    network_id: str
    roster_version: int
    items: list[TargetOut]
    next_cursor: NextCursor = None


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    require_approval_out: bool = Field(description="Requests to agencies of another network "
                                       "wait for approval before they are sent")
    require_approval_in: bool = Field(description="Requests from another network wait for "
                                      "approval before anyone may offer")
    approvers: list[uuid.UUID] = Field(default_factory=list, max_length=100,
                                       description="Coordinators who may approve (admins "
                                       "always may)")


class PolicyOut(BaseModel):
    require_approval_out: bool
    require_approval_in: bool
    approvers: list[str]
    updated_at: int | None


def _policy_out(p: approval.Policy) -> PolicyOut:
    return PolicyOut(require_approval_out=p.require_out, require_approval_in=p.require_in,
                     approvers=[str(u) for u in p.approvers], updated_at=p.updated_at)


async def directory_view(request: web.Request) -> web.Response:
    q = query_params(request, DirectoryQuery)
    ctx = activation_context(request.app)
    if q.network == ctx.network_id:
        raise ActivationError(ActivationCode.INVALID_INPUT,
                              "this is the node's own network: see /api/v1/activations/targets",
                              "network")
    items, version = foreign_targets(ctx, q.network, q.discipline.value if q.discipline
                                     else None, q.region or None)
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(InterstateDirectoryOut(network_id=q.network, roster_version=version,
                                        items=page, next_cursor=nxt))


def foreign_targets(ctx: ActivationContext, network: str, discipline: str | None,
                    region: str | None) -> tuple[list[TargetOut], int]:
    """Agencies of member network `network` as request targets (qualified node ids), and
    the version of its roster; the interstate refusals as `ActivationError`."""
    if ctx.interstate is None:
        raise ActivationError(ActivationCode.UNKNOWN_NETWORK,
                              "this node is not part of an interstate compact", "network")
    try:
        found = ctx.interstate.agencies(network, discipline=discipline, region=region)
        version = int(getattr(ctx.interstate, "roster_version", lambda _n: 0)(network))
    except ProtocolError as exc:
        code = _CODES.get(exc.code.value, ActivationCode.FOREIGN_ROSTER_INVALID)
        raise ActivationError(code, exc.detail or code.value.replace("_", " "),
                              "network") from None
    return [TargetOut(node_id=f"{network}/{n.node_id}", name=n.name, region=n.region,
                      disciplines=[str(getattr(d, "value", d)) for d in n.disciplines],
                      allowed=True) for n in found], version


async def policy_view(request: web.Request) -> web.Response:
    async with request.app[DB].read() as conn:
        return _dump(_policy_out(await approval.read_policy(conn)))


async def policy_set(request: web.Request) -> web.Response:
    data = await json_body(request, PolicyIn)
    ctx = activation_context(request.app)
    p = principal(request)
    async with request.app[DB].write() as conn:
        out = await approval.write_policy(
            conn, ctx, approval.Policy(data.require_approval_out, data.require_approval_in,
                                       tuple(data.approvers)), p.user_id)
        await audit.append(conn, ts=ctx.now(), action="activation.interstate_policy", actor=p,
                           target_type="activation_policy", target_id="interstate",
                           detail={"out": out.require_out, "in": out.require_in,
                                   "approvers": len(out.approvers)})
    return _dump(_policy_out(out))


async def approve_activation(conn: Any, ctx: ActivationContext, aid: str,
                             requester: str | None, p: Principal) -> ActivationOut:
    """Approve (the API and the pages): a held outgoing request is sent at once, in the
    same transaction; the audit entry holds ids and states only."""
    act = await rows.find(conn, aid, requester)
    await approval.approve(conn, ctx, act, p)
    out: ActivationOut
    if act.side is Side.OUT and act.own_state.value == "draft":
        out = await requesting.submit(conn, ctx, aid)  # approved: sent now
    else:
        out = await views.view(conn, ctx, act)
    await audit.append(conn, ts=ctx.now(), action="activation.approve", actor=p,
                       target_type="activation", target_id=aid,
                       detail={"side": act.side.value, "state": out.state.value})
    return out


async def approve(request: web.Request) -> web.Response:
    ctx = activation_context(request.app)
    p = principal(request)
    aid = _aid(request)
    requester = query_params(request, ActivationQuery).requester
    async with request.app[DB].write() as conn:
        out = await approve_activation(conn, ctx, aid, requester, p)
    return _dump(out)


def interstate_routes() -> list[Route]:
    t = ("activations",)
    return [
        Route("GET", f"{P}/interstate/directory", directory_view,
              "api.activations.interstate.directory", COORDINATOR,
              "Agencies of another member network (verified roster)", query=DirectoryQuery,
              response=InterstateDirectoryOut, tags=t),
        Route("GET", f"{P}/interstate/policy", policy_view,
              "api.activations.interstate.policy", APPROVERS,
              "Approval policy for interstate activations", response=PolicyOut, tags=t),
        Route("PUT", f"{P}/interstate/policy", policy_set,
              "api.activations.interstate.policy.set", ADMIN,
              "Set the approval policy for interstate activations", body=PolicyIn,
              response=PolicyOut, tags=t),
        Route("POST", f"{P}/{{activation_id}}/approve", approve, "api.activations.approve",
              APPROVERS, "Approve a held interstate activation (an outgoing one is sent)",
              query=ActivationQuery, response=ActivationOut, tags=t),
    ]


def setup_interstate_api(app: web.Application) -> None:
    add_routes(app, interstate_routes())
