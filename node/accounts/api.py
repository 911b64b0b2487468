"""The accounts room's JSON routes: one's own password and sessions, an admin's reset.

- `POST /api/v1/account/password` (everyone): change your own password
  (`node.accounts.passwords.change_password`); the only route besides logging out that a
  user under a forced change may call;
- `GET /api/v1/sessions`, `DELETE /api/v1/sessions/{id}` (everyone): your own browser
  sessions (`node.accounts.sessions`);
- `POST /api/v1/users/{id}/reset-password` (admin): a temporary password, shown once.

Token listing and revoking stay in `node.web.api` (`node.accounts.tokens`).
"""

from __future__ import annotations

import uuid

from aiohttp import web
from pydantic import BaseModel

from federation.client_address import client_address
from node.accounts import passwords, sessions
from node.core.appkeys import THROTTLE
from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.core.paging import page_of
from node.core.routes import ALL_ROLES, Route
from node.core.vocabulary import Role
from node.web.api import query_params
from node.web.plumbing import json_body, principal

__all__ = ["FORCED_CHANGE_ROUTES", "routes"]

P = "/api/v1"
ADMIN = frozenset({Role.ADMIN})
FORCED_CHANGE_ROUTES = frozenset({"api.account.password"})


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    resp = web.Response(body=model.model_dump_json().encode(), status=status,
                        content_type="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise NodeError(Code.NOT_FOUND, "no such record") from None


async def password_change(request: web.Request) -> web.Response:
    data = await json_body(request, passwords.PasswordChangeIn)
    out = await passwords.change_password(NodeContext.of(request.app), request.app[THROTTLE],
                                          principal(request), data, client_address(request))
    return _dump(out)


async def password_reset(request: web.Request) -> web.Response:
    out = await passwords.reset_password(NodeContext.of(request.app), principal(request),
                                         _id(request))
    return _dump(out)


async def session_list(request: web.Request) -> web.Response:
    q = query_params(request, sessions.SessionQuery)
    items = await sessions.list_sessions(NodeContext.of(request.app), principal(request))
    page, nxt = page_of(items, q.cursor, q.limit)
    return _dump(sessions.SessionList(items=page, next_cursor=nxt))


async def session_end(request: web.Request) -> web.Response:
    return _dump(await sessions.end_session(NodeContext.of(request.app), principal(request),
                                            _id(request)))


def routes() -> list[Route]:
    return [
        Route("POST", f"{P}/account/password", password_change, "api.account.password",
              ALL_ROLES, "Change your own password (ends your other sessions, revokes your "
              "API tokens)", body=passwords.PasswordChangeIn,
              response=passwords.PasswordChangeOut, tags=("account",)),
        Route("GET", f"{P}/sessions", session_list, "api.sessions.list", ALL_ROLES,
              "Your own browser sessions", query=sessions.SessionQuery,
              response=sessions.SessionList, tags=("account",)),
        Route("DELETE", f"{P}/sessions/{{id}}", session_end, "api.sessions.end", ALL_ROLES,
              "End one of your own browser sessions", response=sessions.SessionInfo,
              tags=("account",)),
        Route("POST", f"{P}/users/{{id}}/reset-password", password_reset,
              "api.users.reset_password", ADMIN, "Reset a user's password to a temporary "
              "one they must change at next login", response=passwords.PasswordResetOut,
              tags=("users",)),
    ]
