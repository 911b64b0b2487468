"""The hub's OpenID Connect sign-in: `setup(app)` (in `hub.app.FEATURES`, after the
dashboard, whose pages it renders with) mounts `GET /login/oidc` and
`GET /login/oidc/callback` when the configuration has an `[oidc]` table; without one it
does nothing (local accounts only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.webkit.login import IssuedSession
from federation.webkit.oidc import CALLBACK, OIDC_FLOW, START, Identity, OidcFlow
from federation.webkit.oidc_flows import PendingFlows, flow_seal_root
from federation.webkit.oidc_provider import OidcError
from hub.appkeys import CLOCK, DB, KEYS, SETTINGS
from hub.dashboard.login import PRE_COOKIE
from hub.dashboard.pages import render
from hub.oidc import users
from hub.users import accounts

__all__ = ["HubOidc", "setup"]


class HubOidc:
    """`federation.webkit.oidc.OidcBackend` for the hub."""

    pre_cookie = PRE_COOKIE
    session_cookie = accounts.SESSION_COOKIE
    landing = "/dashboard"

    def secure_cookies(self, request: web.Request) -> bool:
        return accounts.secure_cookies(request.app[SETTINGS])

    def public_url(self, request: web.Request) -> str:
        return request.app[SETTINGS].public_url

    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response:
        return render(request, template, context, status)

    async def sign_in(self, request: web.Request, who: Identity) -> IssuedSession:
        app = request.app
        return await users.sign_in(app[DB], app[accounts.HASHER], who, app[CLOCK].now_ms())

    async def refused(self, request: web.Request, error: OidcError,
                      who: Identity | None) -> None:
        await users.record_refusal(request.app[DB], error.code.value, who,
                                   request.app[CLOCK].now_ms())


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    if settings.oidc is None:
        return
    secret = settings.oidc_client_secret
    clock = app[CLOCK]
    flows = PendingFlows(app[DB], users.PENDING_FLOWS,
                         flow_seal_root(bytes(app[KEYS].signing_key)))  # same in every process
    flow = OidcFlow(settings.oidc, secret.get_secret_value() if secret else None, HubOidc(),
                    lambda: clock.now_ms() // 1000, flows)
    app[OIDC_FLOW] = flow
    app.on_cleanup.append(flow.cleanup)
    app.router.add_get(START, flow.start)
    app.router.add_get(CALLBACK, flow.callback)
