"""The hub's side of the shared login flow (`federation.webkit.login`): its cookie names,
its user store and throttle (`hub.users.accounts.login`), `HubError` for refusals, and the
dashboard as the landing page. A missing or empty field answers 400 like the hub's other
refusals of bad input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.client_address import client_address
from federation.webkit.login import IssuedSession
from federation.webkit.pages import Render
from hub.appkeys import AUTHORIZE, CLOCK, DB, SETTINGS
from hub.errors import Code, HubError
from hub.users import accounts as users

__all__ = ["PRE_COOKIE", "HubLogin"]

PRE_COOKIE = "peernet_hub_pre"


class HubLogin:
    """`federation.webkit.login.LoginBackend` for the hub; `render` is the dashboard's."""

    pre_cookie = PRE_COOKIE
    session_cookie = users.SESSION_COOKIE
    landing = "/dashboard"
    missing_status = 400
    empty_username_missing = True

    def __init__(self, render: Render) -> None:
        self._render = render

    def secret(self, request: web.Request) -> bytes:
        return request.app[users.LOGIN_SECRET]

    def secure_cookies(self, request: web.Request) -> bool:
        return users.secure_cookies(request.app[SETTINGS])

    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response:
        return self._render(request, template, context, status)

    def csrf_refused(self, message: str) -> Exception:
        return HubError(Code.CSRF_FAILED, message)

    async def login(self, request: web.Request, username: str,
                    password: str) -> IssuedSession:
        app = request.app
        return await users.login(
            app[DB], app[users.HASHER], app[users.THROTTLE], username=username,
            password=password, address=client_address(request), now_ms=app[CLOCK].now_ms())

    async def logout(self, request: web.Request) -> None:
        await request.app[AUTHORIZE](request, frozenset(users.HubRole))
        await users.logout(request.app[DB], request[users.PRINCIPAL])
