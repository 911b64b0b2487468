"""Wires the accounts room into the node: its JSON and page routes, the "Account" link, and
the middleware behind two account rules (runs right after the auth middleware, so the
caller is known and allowed on the route):

- forced change: a user whose password an admin set (`must_change_password`) may only
  change it or log out. A page request (GET) is sent to `/account/password`; any other
  request is refused with 403 `password_change_required` before its handler runs, so
  nothing changes. The flag comes with the caller from the auth lookup (no extra read);
- last seen: a session's `last_seen_at` is noted (`node.accounts.sessions.touch`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from node.accounts import api, pages, sessions
from node.core.appkeys import PRINCIPAL, ROUTES
from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.core.routes import ALL_ROLES, NavItem, add_nav, add_routes

__all__ = ["SEEN", "account_guard", "setup"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEEN = web.AppKey("peernet_session_seen", dict[str, int])
ALLOWED_WHILE_FORCED = api.FORCED_CHANGE_ROUTES | pages.FORCED_CHANGE_PAGES


@web.middleware
async def account_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    p = request.get(PRINCIPAL)
    route = request.app[ROUTES].get(request.match_info.route.name)
    if p is None or route is None or route.roles is None:
        return await handler(request)
    if p.via == "session" and p.session_id is not None:
        await sessions.touch(NodeContext.of(request.app), request.app[SEEN], p.session_id)
    if p.must_change_password and route.name not in ALLOWED_WHILE_FORCED:
        if not route.is_api and route.method == "GET":
            raise web.HTTPSeeOther(pages.PASSWORD_PAGE)
        raise NodeError(Code.PASSWORD_CHANGE_REQUIRED,
                        "change your password first: an admin set it")
    return await handler(request)


def setup(app: web.Application) -> None:
    app[SEEN] = {}
    add_routes(app, [*api.routes(), *pages.routes()])
    add_nav(app, NavItem("Account", "/account", ALL_ROLES, 90))
    app.middlewares.append(account_guard)
