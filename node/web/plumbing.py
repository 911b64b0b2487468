"""The node's web plumbing: error conversion, authentication and the role gate, CSRF, body
parsing into strict pydantic models, and page rendering.

Order of middlewares (outermost first): security headers, errors, body limit, auth. The auth
middleware finds the `Route` for the matched handler in the route table and, before the
handler runs (so a refused request writes nothing but its audit entry):

1. public route (`roles is None`): go on;
2. find the caller: `Authorization: Bearer <api token>` or the session cookie (both stored
   as SHA-256 only; one indexed read, no password hash on this path; a token's lookup is
   kept for a moment and forgotten on any change, in every process:
   `node.core.auth_cache`). None -> 401;
3. role outside `route.roles` -> audit `access.refused`, 403 `forbidden`;
4. unsafe method on a cookie session -> the CSRF token (form field `csrf` or header
   `X-CSRF-Token`) must equal the session's; else audit `csrf.refused`, 403 `csrf_failed`.

Bad input: `json_body` and `form_body` validate with the route's model (`extra="forbid"`):
an unknown field (free text has no field to go in) -> 422 `unknown_field`, a value outside an
enum -> 422 `invalid_enum`, anything else -> 422 `invalid_input`, always naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select

from federation.errors import FederationError
from federation.field_errors import field_message, sentence
from federation.sqlite_lock import RETRY_AFTER_S
from federation.webkit.csrf import csrf_given
from federation.webkit.pages import error_response
from federation.websecurity import csrf_equal, token_hash
from node.core import audit
from node.core.access import Principal
from node.core.appkeys import CLOCK, DB, NAV, PRINCIPAL, ROUTES, SETTINGS
from node.core.db import ApiToken, User, WebSession, table_of
from node.core.errors import Code, NodeError
from node.core.routes import Route
from node.core.vocabulary import Role

__all__ = [
    "SESSION_COOKIE",
    "auth_middleware",
    "base_context",
    "error_middleware",
    "form_body",
    "json_body",
    "json_response",
    "principal",
    "render",
    "validation_error",
]

log = logging.getLogger("peernet.node.web")
SESSION_COOKIE = "peernet_session"
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_users = table_of(User)
_tokens = table_of(ApiToken)
_sessions = table_of(WebSession)
# Built once (every API request runs it): the bearer token's user, if the token is live.
_TOKEN_LOOKUP = (
    select(_users.c.id, _users.c.username, _users.c.role, _users.c.team,
           _tokens.c.expires_at, _users.c.must_change_password)
    .join(_tokens, _tokens.c.user_id == _users.c.id)
    .where(_tokens.c.token_hash == bindparam("th"),
           _tokens.c.revoked_at.is_(None),
           (_tokens.c.expires_at.is_(None)) | (_tokens.c.expires_at > bindparam("now")),
           _users.c.active.is_(True))
)
_AUTOCOMMIT: dict[bool, dict[str, Any]] = {True: {"peernet_autocommit": True},
                                           False: {"isolation_level": "AUTOCOMMIT"}}


def principal(request: web.Request) -> Principal:
    if PRINCIPAL not in request:
        raise NodeError(Code.UNAUTHENTICATED, "log in first")
    return request[PRINCIPAL]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def validation_error(exc: ValidationError) -> NodeError:
    """The first pydantic error as a NodeError naming the field, its message a plain
    sentence (`federation.field_errors`: never pydantic's text or a regular expression)."""
    errors = exc.errors(include_url=False, include_input=False)
    # An unknown field (where free text would hide) is the most telling, then a bad enum.
    rank = {"extra_forbidden": 0, "enum": 1, "literal_error": 1}
    err = min(errors, key=lambda e: rank.get(e.get("type", ""), 2))
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    kind = err.get("type", "")
    if kind == "json_invalid" or (kind == "model_type" and not loc):
        return NodeError(Code.MALFORMED, "The body is not a JSON object.", None)
    field, message = field_message(err)
    if kind == "extra_forbidden":
        return NodeError(Code.UNKNOWN_FIELD, message, field)
    if kind in ("enum", "literal_error"):
        return NodeError(Code.INVALID_ENUM, message, field)
    return NodeError(Code.INVALID_INPUT, message, field)


async def json_body(request: web.Request, model: type[M]) -> M:
    if request.content_type not in ("application/json", ""):
        raise NodeError(Code.MALFORMED, "send application/json")
    data = await request.read()
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def form_body(
    request: web.Request, model: type[M], *, lists: tuple[str, ...] = ()
) -> M:
    """Validate an urlencoded form; `csrf` is dropped, empty strings become absent,
    `lists` names fields that may repeat (checkboxes)."""
    form = await request.post()
    data: dict[str, Any] = {}
    for key in form:
        if key == "csrf" or key in data:
            continue
        values = [v for v in form.getall(key) if isinstance(v, str)]
        if key in lists:
            data[key] = [v for v in values if v != ""]
        elif values and values[0] != "":
            data[key] = values[0]
    for key in lists:
        data.setdefault(key, [])
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        raise validation_error(exc) from None


def render(request: web.Request, template: str, context: Mapping[str, Any],
           status: int = 200) -> web.Response:
    """Render a page with the base context (who is logged in, nav, CSRF token, node name).

    Use this rather than `aiohttp_jinja2.render_template` directly: it also works for error
    pages rendered before the handler ran."""
    return aiohttp_jinja2.render_template(
        template, request, {**base_context(request), **context}, status=status
    )


def base_context(request: web.Request) -> dict[str, Any]:
    p = request.get(PRINCIPAL)
    nav = [i for i in request.app[NAV] if p is not None and p.role in i.roles]
    return {
        "me": p,
        "nav": nav,
        "csrf": p.csrf_token if p else None,
        "node_name": request.app[SETTINGS].name,
        "path": request.path,
        "sentence": sentence,
    }


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NodeError as exc:
        return _error_response(request, exc)
    except FederationError as exc:
        if exc.code in (Code.TOO_LARGE.value, Code.BUSY.value):
            return _error_response(request, NodeError(Code(exc.code), exc.message))
        raise
    except web.HTTPRequestEntityTooLarge:
        return _error_response(request, NodeError(Code.TOO_LARGE, "request body too large"))
    except web.HTTPNotFound:
        return _error_response(request, NodeError(Code.NOT_FOUND, "no such page"))
    except web.HTTPMethodNotAllowed:
        return _error_response(request, NodeError(Code.METHOD_NOT_ALLOWED, "method not allowed"))
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(request, NodeError(Code.INTERNAL, "internal error"))


def _error_response(request: web.Request, exc: NodeError) -> web.StreamResponse:
    as_page = not _is_api(request) and "text/html" in request.headers.get("Accept", "")
    response = error_response(request, exc, as_page=as_page,
                              unauthenticated=exc.code is Code.UNAUTHENTICATED, render=render)
    if exc.code is Code.BUSY:  # nothing was written; the same request may simply be sent again
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def load_principal(request: web.Request) -> Principal | None:
    """The caller from a bearer token or the session cookie; None when neither is valid."""
    app = request.app
    now = app[CLOCK].now_ms()
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        th = token_hash(token.strip())
        db = app[DB]
        cache = db.auth_cache
        cached: Principal | None = cache.get(th, now)
        if cached is not None:
            return cached
        began = cache.begin()
        async with db.engine.connect() as conn:
            # One statement outside a transaction: on PostgreSQL no BEGIN and ROLLBACK
            # round trips around the lookup.
            conn = await conn.execution_options(**_AUTOCOMMIT[db.is_sqlite])
            row = (await conn.execute(_TOKEN_LOOKUP, {"th": th, "now": now})).first()
        if row is None:
            cache.forget(th)
            return None
        p = Principal(row.id, row.username, Role(row.role), row.team, "token",
                      must_change_password=bool(row.must_change_password))
        cache.put(th, p, now, row.expires_at, began)
        return p
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    sid = token_hash(cookie)
    sstmt = (
        select(_users.c.id, _users.c.username, _users.c.role, _users.c.team,
               _sessions.c.csrf_token, _users.c.must_change_password)
        .join(_sessions, _sessions.c.user_id == _users.c.id)
        .where(_sessions.c.id == sid, _sessions.c.expires_at > now,
               _users.c.active.is_(True))
    )
    async with app[DB].engine.connect() as conn:
        srow = (await conn.execute(sstmt)).first()
    if srow is None:
        return None
    return Principal(srow.id, srow.username, Role(srow.role), srow.team, "session", sid,
                     srow.csrf_token, bool(srow.must_change_password))


async def audit_refusal(request: web.Request, p: Principal | None, action: str,
                        code: Code, target_type: str | None = None,
                        target_id: str | None = None) -> None:
    """Write an audit entry for a refused request (its own transaction)."""
    route = request.match_info.route.name
    async with request.app[DB].write() as conn:
        await audit.append(
            conn, ts=request.app[CLOCK].now_ms(), action=action, actor=p,
            target_type=target_type or "route", target_id=target_id or route,
            outcome="refused", detail={"code": code.value},
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route: Route | None = request.app[ROUTES].get(request.match_info.route.name)
    if route is None or route.roles is None:
        if route is not None and SESSION_COOKIE in request.cookies:
            p = await load_principal(request)
            if p is not None:
                request[PRINCIPAL] = p
        return await handler(request)
    p = await load_principal(request)
    if p is None:
        raise NodeError(Code.UNAUTHENTICATED, "log in or send a valid API token")
    request[PRINCIPAL] = p
    if p.role not in route.roles:
        await audit_refusal(request, p, "access.refused", Code.FORBIDDEN)
        raise NodeError(Code.FORBIDDEN, "your role may not use this")
    if route.is_unsafe and route.csrf and p.via == "session":
        if not csrf_equal(p.csrf_token, await csrf_given(request)):
            await audit_refusal(request, p, "csrf.refused", Code.CSRF_FAILED)
            raise NodeError(Code.CSRF_FAILED, "the form expired or was not sent from this site")
    return await handler(request)
