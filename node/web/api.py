"""The node's JSON API under /api/v1/ (its OpenAPI 3.1 document: `node.web.openapi`).

Authentication: `Authorization: Bearer <token>` (scripts, CLI; see `peernet node token
create`) or the browser session cookie plus `X-CSRF-Token` on unsafe methods. Roles per
route follow DESIGN section 3 (see the `roles=` of each route below); record-level rules are
in the services. Errors: `{"error": {"code", "message", "field"}}` with the status from
`node.core.errors.HTTP_STATUS`.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from node.accounts import tokens
from node.accounts import user_list as user_paging
from node.accounts import users as accounts
from node.core import audit as audit_log
from node.core import audit_verify as audit_verify_mod
from node.core.context import NodeContext
from node.core.db import AuditEntry, table_of
from node.core.errors import Code, NodeError
from node.core.paging import next_cursor, offset_of, page_of
from node.core.routes import ALL_ROLES, Route, add_routes
from node.core.schemas import (
    AuditEntryOut,
    AuditPage,
    AuditQuery,
    AuditVerifyOut,
    CompleteIn,
    DisclosureIn,
    DisclosureList,
    DisclosureOut,
    DisclosureQuery,
    EncounterIn,
    EncounterList,
    EncounterOut,
    EncounterQuery,
    FollowUpList,
    FollowUpOut,
    FollowUpQuery,
    MeOut,
    PurgeIn,
    PurgeOut,
    ReassignIn,
    ReportOut,
    ReportQuery,
    TokenIn,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
    UserQuery,
)
from node.core.times import to_dt
from node.core.vocabulary import Role
from node.records import disclosures, encounters, followup_paging, followups, report, retention
from node.records.encounter_paging import count_encounters, encounter_where
from node.records.list_filters import check_range
from node.web import openapi
from node.web.plumbing import json_body, json_response, principal, validation_error

__all__ = ["query_params", "setup"]

M = TypeVar("M", bound=BaseModel)
P = "/api/v1"
SUPPORTERS = frozenset({Role.PEER_SUPPORTER, Role.COORDINATOR})
COORDINATOR = frozenset({Role.COORDINATOR})
ADMIN = frozenset({Role.ADMIN})
AUDITOR = frozenset({Role.AUDITOR})
REPORT_READERS = frozenset({Role.COORDINATOR, Role.AUDITOR})


def query_params(request: web.Request, model: type[M]) -> M:
    data: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) != 1:
            raise NodeError(Code.INVALID_INPUT, f"{key}: give it once", key)
        data[key] = values[0]
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        raise validation_error(exc) from None


def _id(request: web.Request, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such record") from None


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json().encode(), status=status,
                        content_type="application/json")


async def me(request: web.Request) -> web.Response:
    p = principal(request)
    return _dump(MeOut(id=p.user_id, username=p.username, role=p.role, team=p.team))


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(openapi.openapi_document(request.app))


async def encounter_create(request: web.Request) -> web.Response:
    data = await json_body(request, EncounterIn)
    body = await encounters.create_encounter_json(NodeContext.of(request.app), principal(request),
                                                  data)
    return web.Response(body=body, status=201, content_type="application/json")


async def encounter_list(request: web.Request) -> web.Response:
    q = query_params(request, EncounterQuery)
    ctx, p = NodeContext.of(request.app), principal(request)
    check_range(q.since, q.until)
    offset = offset_of(q.cursor) if q.cursor else q.offset
    where = encounter_where(ctx, q.since, q.until, q.status, q.discipline)
    items = await encounters.list_encounters(ctx, p, q.scope, q.limit, offset, where)
    return _dump(EncounterList(items=items, next_cursor=next_cursor(offset, q.limit, len(items)),
                               total=await count_encounters(ctx, p, q.scope, where)))


async def encounter_get(request: web.Request) -> web.Response:
    out = await encounters.get_encounter(NodeContext.of(request.app), principal(request),
                                         _id(request))
    return _dump(out)


async def follow_up_list(request: web.Request) -> web.Response:
    q = query_params(request, FollowUpQuery)
    check_range(q.since, q.until)
    ctx = NodeContext.of(request.app)
    conds = followup_paging.where(ctx, since=q.since, until=q.until, status=q.status,
                                  discipline=q.discipline, due_only=q.due_only)
    offset = offset_of(q.cursor)
    page, total = await followup_paging.page_follow_ups(ctx, principal(request), q.scope,
                                                        conds, q.limit, offset)
    return _dump(FollowUpList(items=page, next_cursor=next_cursor(offset, q.limit, len(page)),
                              total=total))


async def follow_up_complete(request: web.Request) -> web.Response:
    data = await json_body(request, CompleteIn)
    out = await followups.complete(NodeContext.of(request.app), principal(request),
                                   _id(request), data.outcome)
    return _dump(out)


async def follow_up_reassign(request: web.Request) -> web.Response:
    data = await json_body(request, ReassignIn)
    out = await followups.reassign(NodeContext.of(request.app), principal(request),
                                   _id(request), data.owner, data.due)
    return _dump(out)


async def user_list(request: web.Request) -> web.Response:
    q = query_params(request, UserQuery)
    ctx, f = NodeContext.of(request.app), user_paging.filter_of(q.role, q.active, q.q)
    items = await user_paging.page_users(ctx, f, offset_of(q.cursor), q.limit)
    return _dump(UserList(items=items, next_cursor=next_cursor(offset_of(q.cursor), q.limit,
                                                                len(items)),
                          total=await user_paging.count_users(ctx, f)))


async def user_create(request: web.Request) -> web.Response:
    data = await json_body(request, UserIn)
    out = await accounts.create_user(NodeContext.of(request.app), principal(request), data)
    return _dump(out, 201)


async def user_update(request: web.Request) -> web.Response:
    data = await json_body(request, UserPatch)
    out = await accounts.update_user(NodeContext.of(request.app), principal(request),
                                     _id(request), data)
    return _dump(out)


async def token_create(request: web.Request) -> web.Response:
    data = await json_body(request, TokenIn)
    p = principal(request)
    out = await accounts.create_token(NodeContext.of(request.app), p.user_id, data, p)
    return _dump(out, 201)


async def token_list(request: web.Request) -> web.Response:
    q = query_params(request, tokens.TokenQuery)
    items = await tokens.list_tokens(NodeContext.of(request.app), principal(request), q.user)
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(tokens.TokenList(items=page, next_cursor=nxt))


async def token_revoke(request: web.Request) -> web.Response:
    return _dump(await tokens.revoke_token(NodeContext.of(request.app), principal(request),
                                           _id(request)))


async def disclosure_list(request: web.Request) -> web.Response:
    q = query_params(request, DisclosureQuery)
    items = await disclosures.list_disclosures(NodeContext.of(request.app), principal(request))
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(DisclosureList(items=page, next_cursor=nxt))


async def disclosure_create(request: web.Request) -> web.Response:
    data = await json_body(request, DisclosureIn)
    out = await disclosures.create_disclosure(NodeContext.of(request.app), principal(request),
                                              data)
    return _dump(out, 201)


async def disclosure_get(request: web.Request) -> web.Response:
    out = await disclosures.get_disclosure(NodeContext.of(request.app), principal(request),
                                           _id(request))
    return _dump(out)


_A = table_of(AuditEntry)


async def audit_list(request: web.Request) -> web.Response:
    from sqlalchemy import select

    q = query_params(request, AuditQuery)
    ctx = NodeContext.of(request.app)
    after = int(q.cursor) if q.cursor else q.after_seq
    async with ctx.db.read() as conn:
        rows = (await conn.execute(select(_A).where(_A.c.seq > after)
                                   .order_by(_A.c.seq).limit(q.limit))).mappings().all()
    items = [AuditEntryOut(seq=r["seq"], ts=to_dt(r["ts"]), actor=r["actor"], role=r["role"],
                           action=r["action"], target_type=r["target_type"],
                           target_id=r["target_id"], outcome=r["outcome"],
                           detail=audit_log.detail_of(r), prev_hash=r["prev_hash"],
                           hash=r["hash"]) for r in rows]
    last = str(items[-1].seq) if len(items) >= q.limit else None
    return _dump(AuditPage(items=items, next_cursor=last))


async def audit_verify(request: web.Request) -> web.Response:
    ctx = NodeContext.of(request.app)
    async with ctx.db.read() as conn:
        # Stale means: unsigned although the signer ran since (see SignerPasses).
        passed = request.app[audit_verify_mod.SIGNER_PASSES].last_ms
        rep = await audit_verify_mod.verify(
            conn, ctx.keys, ctx.settings.node_id,
            now_ms=ctx.clock.now_ms() if passed is None else passed, sign_interval_ms=0)
    return _dump(AuditVerifyOut(**rep.as_dict()))


async def agency_report(request: web.Request) -> web.Response:
    q = query_params(request, ReportQuery)
    return _dump(await report.agency_report(NodeContext.of(request.app), q.months))


async def retention_purge(request: web.Request) -> web.Response:
    data = await json_body(request, PurgeIn)
    ctx = NodeContext.of(request.app)
    days = data.days or ctx.settings.retention_days
    count = await retention.purge_encounters(ctx, days, principal(request))
    return _dump(PurgeOut(purged=count, days=days))


def setup(app: web.Application) -> None:
    openapi.init(app)
    add_routes(app, [
        Route("GET", f"{P}/openapi.json", openapi_json, "api.openapi", None,
              "This document", tags=("meta",)),
        Route("GET", f"{P}/me", me, "api.me", ALL_ROLES, "Who am I", response=MeOut,
              tags=("meta",)),
        Route("POST", f"{P}/encounters", encounter_create, "api.encounters.create", SUPPORTERS,
              "Log an encounter", body=EncounterIn, response=EncounterOut, status=201,
              tags=("encounters",)),
        Route("GET", f"{P}/encounters", encounter_list, "api.encounters.list", SUPPORTERS,
              "My (or my team's) encounters", query=EncounterQuery, response=EncounterList,
              tags=("encounters",)),
        Route("GET", f"{P}/encounters/{{id}}", encounter_get, "api.encounters.get", SUPPORTERS,
              "One encounter", response=EncounterOut, tags=("encounters",)),
        Route("GET", f"{P}/follow-ups", follow_up_list, "api.follow_ups.list", SUPPORTERS,
              "My (or my team's) follow-ups", query=FollowUpQuery, response=FollowUpList,
              tags=("follow-ups",)),
        Route("POST", f"{P}/follow-ups/{{id}}/complete", follow_up_complete,
              "api.follow_ups.complete", SUPPORTERS, "Complete a follow-up", body=CompleteIn,
              response=FollowUpOut, tags=("follow-ups",)),
        Route("POST", f"{P}/follow-ups/{{id}}/reassign", follow_up_reassign,
              "api.follow_ups.reassign", COORDINATOR, "Reassign a follow-up", body=ReassignIn,
              response=FollowUpOut, tags=("follow-ups",)),
        Route("GET", f"{P}/users", user_list, "api.users.list", ADMIN, "Users",
              query=UserQuery, response=UserList, tags=("users",)),
        Route("POST", f"{P}/users", user_create, "api.users.create", ADMIN, "Create a user",
              body=UserIn, response=UserOut, status=201, tags=("users",)),
        Route("PATCH", f"{P}/users/{{id}}", user_update, "api.users.update", ADMIN,
              "Change a user's role, team, password or activity", body=UserPatch,
              response=UserOut, tags=("users",)),
        Route("POST", f"{P}/tokens", token_create, "api.tokens.create", ALL_ROLES,
              "Create an API token for yourself", body=TokenIn, response=TokenOut, status=201,
              tags=("users",)),
        Route("GET", f"{P}/tokens", token_list, "api.tokens.list", ALL_ROLES,
              "Your API tokens (admins: any user's), never their values",
              query=tokens.TokenQuery, response=tokens.TokenList, tags=("users",)),
        Route("DELETE", f"{P}/tokens/{{id}}", token_revoke, "api.tokens.revoke", ALL_ROLES,
              "Revoke an API token (yours; admins: any)", response=tokens.TokenInfo,
              tags=("users",)),
        Route("GET", f"{P}/disclosures", disclosure_list, "api.disclosures.list", COORDINATOR,
              "Restricted disclosure records (audited)", query=DisclosureQuery,
              response=DisclosureList,
              tags=("disclosures",)),
        Route("POST", f"{P}/disclosures", disclosure_create, "api.disclosures.create",
              COORDINATOR, "Record a disclosure", body=DisclosureIn, response=DisclosureOut,
              status=201, tags=("disclosures",)),
        Route("GET", f"{P}/disclosures/{{id}}", disclosure_get, "api.disclosures.get",
              COORDINATOR, "One disclosure (audited)", response=DisclosureOut,
              tags=("disclosures",)),
        Route("GET", f"{P}/audit", audit_list, "api.audit.list", AUDITOR, "Audit log",
              query=AuditQuery, response=AuditPage, tags=("audit",)),
        Route("GET", f"{P}/audit/verify", audit_verify, "api.audit.verify", AUDITOR,
              "Verify the audit chain and signed head", response=AuditVerifyOut,
              tags=("audit",)),
        Route("GET", f"{P}/report", agency_report, "api.report", REPORT_READERS,
              "Agency report: aggregates only", query=ReportQuery, response=ReportOut,
              tags=("report",)),
        Route("POST", f"{P}/retention/purge", retention_purge, "api.retention.purge", ADMIN,
              "Purge encounters older than N days", body=PurgeIn, response=PurgeOut,
              tags=("retention",)),
    ])
