"""The node's OpenID Connect sign-in: `setup(app)` (in `node.web.app.FEATURES`) mounts
`GET /login/oidc` and `GET /login/oidc/callback` (public routes) when the configuration has
an `[oidc]` table, over the kit's flow (`federation.webkit.oidc`) and the node's user
store (`node.oidc.users`). Without `[oidc]` it does nothing: local accounts only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from federation.client_address import client_address
from federation.webkit.login import IssuedSession
from federation.webkit.oidc import CALLBACK, OIDC_FLOW, START, Identity, OidcFlow
from federation.webkit.oidc_flows import PendingFlows, flow_seal_root
from federation.webkit.oidc_provider import OidcError
from node.core.appkeys import CLOCK, DB, KEYS, SETTINGS
from node.core.context import NodeContext
from node.core.routes import Route, add_routes
from node.oidc import users
from node.oidc.db import PENDING_FLOWS
from node.web.login import PRE_COOKIE
from node.web.plumbing import SESSION_COOKIE, render

__all__ = ["NodeOidc", "setup"]


class NodeOidc:
    """`federation.webkit.oidc.OidcBackend` for the node."""

    pre_cookie = PRE_COOKIE
    session_cookie = SESSION_COOKIE
    landing = "/"

    def secure_cookies(self, request: web.Request) -> bool:
        return bool(request.app[SETTINGS].secure_cookies)

    def public_url(self, request: web.Request) -> str:
        return request.app[SETTINGS].public_url

    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response:
        return render(request, template, context, status)

    async def sign_in(self, request: web.Request, who: Identity) -> IssuedSession:
        return await users.sign_in(NodeContext.of(request.app), who, client_address(request))

    async def refused(self, request: web.Request, error: OidcError,
                      who: Identity | None) -> None:
        await users.record_refusal(NodeContext.of(request.app), error.code.value, who)


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    if settings.oidc is None:
        return
    secret = settings.oidc_client_secret
    clock = app[CLOCK]
    flows = PendingFlows(app[DB], PENDING_FLOWS,
                         flow_seal_root(bytes(app[KEYS].signing_key)))  # same in every process
    flow = OidcFlow(settings.oidc, secret.get_secret_value() if secret else None, NodeOidc(),
                    lambda: clock.now_ms() // 1000, flows)
    app[OIDC_FLOW] = flow
    app.on_cleanup.append(flow.cleanup)
    add_routes(app, [
        Route("GET", START, flow.start, "page.login.oidc", None,
              "Sign in through the agency's identity provider"),
        Route("GET", CALLBACK, flow.callback, "page.login.oidc.callback", None,
              "Where the identity provider sends the browser back"),
    ])
