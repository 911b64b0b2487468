"""The node's side of the shared login flow (`federation.webkit.login`): its cookie names,
its user store and throttle (`node.accounts.users.login`), and `NodeError` for refusals.
A missing form field answers 422 like the node's other forms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.client_address import client_address
from federation.webkit.login import IssuedSession, LoginFlow
from node.accounts import users as accounts
from node.core.appkeys import LOGIN_SECRET, SETTINGS, THROTTLE
from node.core.context import NodeContext
from node.core.errors import Code, NodeError
from node.web.plumbing import SESSION_COOKIE, principal, render

__all__ = ["LOGIN", "PRE_COOKIE", "NodeLogin"]

PRE_COOKIE = "peernet_pre"


class NodeLogin:
    """`federation.webkit.login.LoginBackend` for the node."""

    pre_cookie = PRE_COOKIE
    session_cookie = SESSION_COOKIE
    landing = "/"
    missing_status = 422
    empty_username_missing = False

    def secret(self, request: web.Request) -> bytes:
        return request.app[LOGIN_SECRET]

    def secure_cookies(self, request: web.Request) -> bool:
        return bool(request.app[SETTINGS].secure_cookies)

    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response:
        return render(request, template, context, status)

    def csrf_refused(self, message: str) -> Exception:
        return NodeError(Code.CSRF_FAILED, message)

    async def login(self, request: web.Request, username: str,
                    password: str) -> IssuedSession:
        return await accounts.login(NodeContext.of(request.app), request.app[THROTTLE],
                                    username, password, client_address(request))

    async def logout(self, request: web.Request) -> None:
        await accounts.logout(NodeContext.of(request.app), principal(request))


LOGIN = LoginFlow(NodeLogin())
