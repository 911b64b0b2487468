"""The accounts room's pages: your account (sessions, API tokens), changing your password,
and for admins the paged users list, a user's tokens and a password reset.

- `GET /account`: your sessions (created, last seen, address; "End" on each) and your API
  tokens ("Revoke" on each active one);
- `GET|POST /account/password`: change your password (current one, new one twice); where a
  forced change sends you (`node.accounts.feature`);
- `GET /admin/users`: the users list with filters (role, active, name) and a pager with
  counts (`node.accounts.user_list`); rendered from `node.web.pages`'s routes;
- `GET /admin/users/{id}/tokens`: one user's tokens, for an admin to revoke one;
- `POST /admin/users/{id}/reset`: the temporary password, shown once (`no-store`).

Every form carries the session's CSRF token (checked by the auth middleware before the
handler runs) and calls the same services as the JSON API, so rules and audit entries match.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from federation.client_address import client_address
from federation.websecurity import clear_cookie
from node.accounts import passwords, sessions, tokens, user_list
from node.core.appkeys import SETTINGS, THROTTLE
from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.core.routes import ALL_ROLES, Route
from node.core.schemas import Password
from node.core.vocabulary import Role
from node.records.encounter_paging import page_of
from node.web.plumbing import SESSION_COOKIE, form_body, principal, render, validation_error

__all__ = ["FORCED_CHANGE_PAGES", "PASSWORD_PAGE", "routes", "users_page"]

ADMIN = frozenset({Role.ADMIN})
PASSWORD_PAGE = "/account/password"  # noqa: S105 - a path
FORCED_CHANGE_PAGES = frozenset({"page.account.password", "page.account.password.post",
                                 "page.logout"})
USERS_PER_PAGE = 50
ROLE_LABELS = {"peer_supporter": "Peer supporter", "coordinator": "Coordinator",
               "admin": "Admin", "auditor": "Auditor"}
_BACK = re.compile(r"^/(account|admin/users/[0-9a-f-]{36}/tokens)$")


class PasswordForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    current_password: str = Field(max_length=200)
    new_password: Password
    confirm: str = Field(max_length=200)


class RevokeForm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    back: str = "/account"


def _ctx(request: web.Request) -> NodeContext:
    return NodeContext.of(request.app)


def _id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such record") from None


def _no_store(resp: web.Response) -> web.Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- your account -----------------------------------------------------------------------

async def account_page(request: web.Request) -> web.Response:
    ctx, p = _ctx(request), principal(request)
    return render(request, "account.html", {
        "sessions": await sessions.list_sessions(ctx, p),
        "tokens": [t for t in await tokens.list_tokens(ctx, p) if t.state == "active"],
        "changed": request.query.get("changed"),
    })


async def session_end(request: web.Request) -> web.Response:
    p = principal(request)
    ended = await sessions.end_session(_ctx(request), p, _id(request))
    if ended.current:
        resp = web.HTTPSeeOther("/login")
        clear_cookie(resp, SESSION_COOKIE, secure=bool(request.app[SETTINGS].secure_cookies))
        raise resp
    raise web.HTTPSeeOther("/account")


async def token_revoke(request: web.Request) -> web.Response:
    form = await form_body(request, RevokeForm)
    await tokens.revoke_token(_ctx(request), principal(request), _id(request))
    raise web.HTTPSeeOther(form.back if _BACK.match(form.back) else "/account")


def _password_page(request: web.Request, error: NodeError | None = None,
                   status: int = 200) -> web.Response:
    return _no_store(render(request, "account_password.html", {
        "error": error, "forced": principal(request).must_change_password}, status))


async def password_page(request: web.Request) -> web.Response:
    return _password_page(request)


async def password_post(request: web.Request) -> web.Response:
    try:
        form = await form_body(request, PasswordForm)
        if form.confirm != form.new_password:
            raise NodeError(Code.INVALID_INPUT, "the two new passwords differ", "confirm")
        out = await passwords.change_password(
            _ctx(request), request.app[THROTTLE], principal(request),
            passwords.PasswordChangeIn(current_password=form.current_password,
                                       new_password=form.new_password),
            client_address(request))
    except NodeError as exc:
        if exc.code not in (Code.INVALID_INPUT, Code.WRONG_PASSWORD, Code.THROTTLED):
            raise
        page = _password_page(request, exc, exc.status)
        wait = getattr(exc, "retry_after_s", None)
        if wait is not None:
            page.headers["Retry-After"] = str(wait)
        return page
    raise web.HTTPSeeOther(f"/account?changed={out.sessions_ended}-{out.tokens_revoked}")


# --- admin ------------------------------------------------------------------------------

async def users_page(request: web.Request, error: NodeError | None = None) -> web.Response:
    """The admin's users list: one page of the filtered users, with counts."""
    ctx = _ctx(request)
    data = {k: v for k, v in request.query.items() if v != ""}
    try:
        q = user_list.UsersPageQuery.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    f = q.filter
    page = page_of(q.page, await user_list.count_users(ctx, f), USERS_PER_PAGE)
    users = await user_list.page_users(ctx, f, page.offset, page.size)
    locked = await request.app[THROTTLE].delayed_users(ctx.db, [u.username for u in users],
                                                       ctx.now())
    keep = {k: v for k, v in data.items() if k != "page"}
    return render(request, "admin_users.html", {
        "users": users, "roles": list(ROLE_LABELS.items()), "labels": ROLE_LABELS,
        "error": error, "locked": locked, "page": page, "q": q,
        "filters": keep, "all_count": await user_list.count_users(ctx, user_list.UserFilter()),
        # Sign-in only through the agency's provider: a temporary password is refused
        # (`oidc_required`), so the page offers no reset.
        "passwords": ctx.settings.oidc is None or not ctx.settings.oidc.only,
    }, status=error.status if error else 200)


async def user_tokens_page(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    user = await user_list.get_user(ctx, _id(request))
    if user is None:
        raise NodeError(Code.NOT_FOUND, "no such user")
    items = await tokens.list_tokens(ctx, principal(request), user.username)
    return render(request, "admin_user_tokens.html", {"user": user, "tokens": items})


async def user_reset(request: web.Request) -> web.Response:
    out = await passwords.reset_password(_ctx(request), principal(request), _id(request))
    return _no_store(render(request, "admin_user_reset.html", {"reset": out}))


def routes() -> list[Route]:
    return [
        Route("GET", "/account", account_page, "page.account", ALL_ROLES, "Your account"),
        Route("POST", "/account/sessions/{id}/end", session_end, "page.account.sessions.end",
              ALL_ROLES, "End one of your sessions"),
        Route("POST", "/account/tokens/{id}/revoke", token_revoke,
              "page.account.tokens.revoke", ALL_ROLES, "Revoke an API token"),
        Route("GET", PASSWORD_PAGE, password_page, "page.account.password", ALL_ROLES,
              "Change your password"),
        Route("POST", PASSWORD_PAGE, password_post, "page.account.password.post", ALL_ROLES,
              "Change your password"),
        Route("GET", "/admin/users/{id}/tokens", user_tokens_page, "page.admin.users.tokens",
              ADMIN, "A user's API tokens"),
        Route("POST", "/admin/users/{id}/reset", user_reset, "page.admin.users.reset", ADMIN,
              "Reset a user's password"),
    ]

