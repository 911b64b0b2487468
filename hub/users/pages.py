"""The hub's account pages (issue 17 item 5), over `hub.users.passwords`:

- `GET /operator/users` (operator): hub users, 50 a page by username, with counts and
  filters (role, active, part of the name); each row has Disable/Enable and Reset password;
- `POST /operator/users/{id}/active` (operator; form `active=yes|no`): enable or disable
  (disabling ends the user's sessions and revokes their tokens; never the last operator);
- `POST /operator/users/{id}/reset` (operator): a temporary password, shown once
  (`Cache-Control: no-store`); the user must change it at their next login;
- `GET|POST /account/password` (every hub user): change your own password; where a
  forced change sends you (`hub.users.accounts.authorize`).

Every post goes through `app[AUTHORIZE]`, which checks the role and the session's CSRF
token before anything changes. Refusals keep the hub's stable codes (`hub.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from federation.client_address import client_address
from hub.appkeys import AUTHORIZE, CLOCK, DB, SETTINGS
from hub.dashboard.pages import label, render
from hub.errors import Code, HubError
from hub.stats.models import parse_query
from hub.users import accounts as users
from hub.users import passwords

__all__ = ["PER_PAGE", "setup"]

OPERATOR = frozenset({users.HubRole.OPERATOR.value})
EVERYONE = frozenset(r.value for r in users.HubRole)
PER_PAGE = 50


class UsersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    page: int = Field(default=1, ge=1, le=1_000_000)
    role: users.HubRole | None = None
    active: Literal["yes", "no"] | None = None
    q: Annotated[str | None, Field(pattern=r"^[a-z0-9._-]{1,63}$")] = None


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def summary(self) -> str:
        if self.total == 0:
            return "No users match"
        return f"{self.offset + 1}–{min(self.offset + self.size, self.total)} of {self.total}"


def _user_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise HubError(Code.NOT_FOUND, "no such user")
    return int(raw)


async def _form(request: web.Request, allowed: set[str]) -> dict[str, str]:
    form = await request.post()
    unknown = sorted(set(form.keys()) - allowed - {"csrf"})
    if unknown:
        raise HubError(Code.INVALID_INPUT, f"unknown field {unknown[0]}", unknown[0])
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def users_page(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, OPERATOR)
    q = parse_query(request.query, UsersQuery)
    f = passwords.UserFilter(q.role, None if q.active is None else q.active == "yes", q.q)
    _, total = await passwords.page_users(request.app[DB], f, 0, 0)
    page = Page(min(q.page, max(1, -(-total // PER_PAGE))), PER_PAGE, total)
    rows, _ = await passwords.page_users(request.app[DB], f, page.offset, page.size)
    keep = {k: v for k, v in request.query.items() if k != "page" and v != ""}
    return render(request, "hub_users.html", {
        "users": rows, "page": page, "q": q, "filters": keep,
        "roles": [(r.value, label(r.value)) for r in users.HubRole],
        "notice": request.query.get("done"),
    })


async def set_active(request: web.Request) -> web.Response:
    p = await _caller(request, OPERATOR)
    form = await _form(request, {"active"})
    if form.get("active") not in ("yes", "no"):
        raise HubError(Code.INVALID_INPUT, "active is yes or no", "active")
    name = await _name_of(request, _user_id(request))
    await users.set_active(request.app[DB], name, form["active"] == "yes",
                           request.app[CLOCK].now_ms(), actor=p.username)
    raise web.HTTPSeeOther("/operator/users")


async def reset(request: web.Request) -> web.Response:
    p = await _caller(request, OPERATOR)
    await _form(request, set())
    oidc = request.app[SETTINGS].oidc
    out = await passwords.reset_password(request.app[DB], request.app[users.HASHER],
                                         _user_id(request), now_ms=request.app[CLOCK].now_ms(),
                                         oidc_only=oidc is not None and oidc.only,
                                         actor=p.username)
    resp = render(request, "hub_user_reset.html", {"reset": out})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _password_page(request: web.Request, error: HubError | None = None) -> web.Response:
    p = request[users.PRINCIPAL]
    resp = render(request, "hub_password.html", {
        "error": error, "forced": p.must_change_password},
        status=error.status if error else 200)
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def password_page(request: web.Request) -> web.Response:
    await request.app[AUTHORIZE](request, EVERYONE)
    return _password_page(request)


async def password_post(request: web.Request) -> web.Response:
    p = await _caller(request, EVERYONE)
    form = await _form(request, {"current_password", "new_password", "confirm"})
    try:
        if not all(k in form for k in ("current_password", "new_password", "confirm")):
            raise HubError(Code.INVALID_INPUT, "fill in all three fields")
        if form["new_password"] != form["confirm"]:
            raise HubError(Code.INVALID_INPUT, "the two new passwords differ", "confirm")
        app = request.app
        await passwords.change_password(
            app[DB], app[users.HASHER], app[users.THROTTLE], p,
            current=form["current_password"], new=form["new_password"],
            address=client_address(request), now_ms=app[CLOCK].now_ms())
    except HubError as exc:
        if exc.code not in (Code.INVALID_INPUT, Code.WRONG_PASSWORD, Code.THROTTLED):
            raise
        page = _password_page(request, exc)
        wait = getattr(exc, "retry_after_s", None)
        if wait is not None:
            page.headers["Retry-After"] = str(wait)
        return page
    raise web.HTTPSeeOther("/dashboard")


async def _caller(request: web.Request, roles: frozenset[str]) -> users.Principal:
    await request.app[AUTHORIZE](request, roles)
    return request[users.PRINCIPAL]


async def _name_of(request: web.Request, uid: int) -> str:
    async with request.app[DB].read() as conn:
        name = (await conn.execute(select(users.U.c.username).where(users.U.c.id == uid))
                ).scalar()
    if name is None:
        raise HubError(Code.NOT_FOUND, "no such user")
    return str(name)


def setup(app: web.Application) -> None:
    """Hub feature hook (after `hub.dashboard.pages.setup`: templates and page errors)."""
    app.router.add_get("/operator/users", users_page)
    app.router.add_post("/operator/users/{id}/active", set_active)
    app.router.add_post("/operator/users/{id}/reset", reset)
    app.router.add_get(users.PASSWORD_PATH, password_page)
    app.router.add_post(users.PASSWORD_PATH, password_post)
