"""OpenID Connect sign-in (authorization code flow with PKCE, state and nonce), once for
node and hub; the provider's side is `federation.webkit.oidc_provider`.

`GET /login/oidc` starts a flow: fresh `state`, `nonce` and PKCE verifier (Authlib's
generator and S256 challenge), kept server-side under a random flow id that goes to the
browser as a cookie (`SameSite=Lax`: it must come back on the provider's cross-site
redirect); then a redirect to the provider's authorization endpoint (Authlib builds it).
The flows are kept in the server's database (`federation.webkit.oidc_flows`: hashed id,
sealed secrets), so the callback may reach any process of the server, even after a restart.
`GET /login/oidc/callback` takes the flow out of the store (single use across processes: a
replayed callback finds nothing, `oidc_state`), compares `state`, exchanges the code with
the verifier, checks the ID token, reads the groups claim (missing: `oidc_no_groups`) and
maps it through the configured rules (none: `oidc_no_role`). Only then does the server's
`OidcBackend` create or update the user and open a session; every refusal goes to
`OidcBackend.refused` (audit, and for a known user whose groups no longer give a role, the
end of their sessions) and shows `oidc_refused.html` with the stable code in `data-code`.

The session cookie is `SameSite=Strict`, which a browser withholds on the navigation that
follows a cross-site redirect; so a good callback answers a tiny page that moves on to the
landing page itself (a same-site navigation) instead of a redirect. Sign-out likewise goes
to the provider's `end_session_endpoint` from a page, because the CSP's `form-action 'self'`
forbids a form post to redirect off-site. The ID token rides along as `id_token_hint` (some
providers, e.g. Okta, require it) in an HttpOnly cookie scoped to `/logout`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from federation.webkit.login import OIDC_FLOW, IssuedSession
from federation.webkit.oidc_config import OidcRule, OidcSettings
from federation.webkit.oidc_flows import FLOW_TTL_S, Pending, PendingFlows
from federation.webkit.oidc_provider import OidcCode, OidcError, Provider
from federation.websecurity import clear_cookie, set_session_cookie

from authlib.common.security import generate_token  # type: ignore[import-untyped]  # isort: skip
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]  # isort: skip
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]  # isort: skip
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]  # isort: skip

__all__ = ["CALLBACK", "OIDC_FLOW", "START", "Identity", "OidcBackend", "OidcFlow",
           "PendingFlows"]

START = "/login/oidc"
CALLBACK = "/login/oidc/callback"
HINT_MAX = 3000  # a larger ID token is not kept as a cookie (logout then sends client_id)


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, after every check."""

    issuer: str
    subject: str
    username: str | None
    groups: tuple[str, ...]
    rule: OidcRule | None  # the first matching rule; None: no role here


class OidcBackend(Protocol):
    """One server's side of the OIDC sign-in."""

    @property
    def pre_cookie(self) -> str: ...
    @property
    def session_cookie(self) -> str: ...
    @property
    def landing(self) -> str: ...

    def secure_cookies(self, request: web.Request) -> bool: ...
    def public_url(self, request: web.Request) -> str: ...  # "" -> the request's origin
    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response: ...

    async def sign_in(self, request: web.Request, who: Identity) -> IssuedSession:
        """Create or update the user (role and team from `who.rule`, never None here),
        open a session and record it; raise `OidcError` to refuse."""
        ...

    async def refused(self, request: web.Request, error: OidcError,
                      who: Identity | None) -> None:
        """Record a refusal; for `oidc_no_role` also end a known user's sessions."""
        ...


class OidcFlow:
    """The handlers of `GET /login/oidc` and `GET /login/oidc/callback` for one server."""

    def __init__(self, settings: OidcSettings, client_secret: str | None,
                 backend: OidcBackend, now_s: Callable[[], int],
                 flows: PendingFlows) -> None:
        self.settings = settings
        self.backend = backend
        self.now_s = now_s
        self.provider = Provider(settings, client_secret, now_s)
        self.flows = flows

    @property
    def flow_cookie(self) -> str:
        return self.backend.pre_cookie + "_oidc"

    @property
    def hint_cookie(self) -> str:
        return self.backend.session_cookie + "_oidc"

    def redirect_uri(self, request: web.Request) -> str:
        base = self.backend.public_url(request).rstrip("/") or str(request.url.origin())
        return base + CALLBACK

    async def cleanup(self, _app: web.Application) -> None:
        await self.provider.close()

    def refusal_page(self, request: web.Request, error: OidcError) -> web.Response:
        resp = self.backend.render(request, "oidc_refused.html", {"error": error},
                                   error.status)
        clear_cookie(resp, self.flow_cookie, secure=self.backend.secure_cookies(request))
        return resp

    async def start(self, request: web.Request) -> web.StreamResponse:
        try:
            meta = await self.provider.metadata()
        except OidcError as exc:
            await self.backend.refused(request, exc, None)
            return self.refusal_page(request, exc)
        state, nonce = generate_token(43), generate_token(43)
        verifier = generate_token(64)
        redirect_uri = self.redirect_uri(request)
        flow_id = secrets.token_urlsafe(32)
        await self.flows.add(flow_id, Pending(state, nonce, verifier, redirect_uri,
                                              self.now_s()))
        url = prepare_grant_uri(
            meta["authorization_endpoint"], self.settings.client_id, "code",
            redirect_uri=redirect_uri, scope=self.settings.scopes, state=state, nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256")
        resp = web.Response(status=303, headers={"Location": url})
        resp.set_cookie(self.flow_cookie, flow_id, max_age=FLOW_TTL_S, path=START,
                        httponly=True, samesite="Lax",
                        secure=self.backend.secure_cookies(request))
        return resp

    async def callback(self, request: web.Request) -> web.StreamResponse:
        who: Identity | None = None
        try:
            id_token, who = await self._identify(request)
            if who.rule is None:
                raise OidcError(OidcCode.NO_ROLE,
                                "your agency account is in no group that may use this "
                                "server; ask your agency's IT to add you to one")
            session = await self.backend.sign_in(request, who)
        except OidcError as exc:
            await self.backend.refused(request, exc, who)
            return self.refusal_page(request, exc)
        b = self.backend
        secure = b.secure_cookies(request)
        resp = b.render(request, "oidc_done.html", {"landing": b.landing}, 200)
        set_session_cookie(resp, b.session_cookie, session.cookie, max_age=session.max_age_s,
                           secure=secure)
        resp.set_cookie(self.hint_cookie, id_token if len(id_token) <= HINT_MAX else "-",
                        max_age=session.max_age_s, path="/logout", httponly=True,
                        samesite="Strict", secure=secure)
        clear_cookie(resp, b.pre_cookie, secure=secure)
        resp.del_cookie(self.flow_cookie, path=START)
        return resp

    async def _identify(self, request: web.Request) -> tuple[str, Identity]:
        flow_id = request.cookies.get(self.flow_cookie, "")
        pending = await self.flows.take(flow_id, self.now_s()) if flow_id else None
        given = request.query.get("state", "")
        if pending is None or not hmac.compare_digest(pending.state.encode(),
                                                      given.encode("utf-8", "replace")):
            raise OidcError(OidcCode.STATE, "this sign-in was not started here or has "
                            "expired; start again")
        iss = request.query.get("iss")  # RFC 9207: which provider answered (mix-up)
        if iss is not None and iss != self.settings.issuer:
            raise OidcError(OidcCode.WRONG_ISSUER,
                            "the answer comes from another identity provider")
        if "error" in request.query:
            raise OidcError(OidcCode.PROVIDER_ERROR,
                            "the identity provider did not sign you in")
        code = request.query.get("code", "")
        if not code:
            raise OidcError(OidcCode.PROVIDER_ERROR, "the identity provider sent no code")
        answer = await self.provider.exchange(code, pending.verifier, pending.redirect_uri)
        id_token: str = answer["id_token"]
        claims = await self.provider.verify(id_token, pending.nonce)
        raw = claims.get(self.settings.groups_claim)
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
            raise OidcError(OidcCode.NO_GROUPS,
                            f"the identity provider sent no {self.settings.groups_claim} "
                            "claim; ask your agency's IT to include it")
        name = claims.get(self.settings.username_claim)
        return id_token, Identity(
            issuer=self.settings.issuer, subject=claims["sub"],
            username=name if isinstance(name, str) else None, groups=tuple(raw),
            rule=self.settings.role_for(raw))

    async def end_session(self, request: web.Request,
                          response_for: Callable[[str | None], web.StreamResponse]
                          ) -> web.StreamResponse:
        """After the server ended its session: the provider's end-session page for a
        browser that signed in through OIDC (when the provider has one), else
        `response_for(None)`; the hint cookie is cleared either way."""
        hint = request.cookies.get(self.hint_cookie)
        url: str | None = None
        if hint:
            try:
                meta = await self.provider.metadata()
            except OidcError:
                meta = {}
            endpoint = meta.get("end_session_endpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")):
                base = self.backend.public_url(request).rstrip("/") or str(
                    request.url.origin())
                params = [("client_id", self.settings.client_id),
                          ("post_logout_redirect_uri", base + "/login")]
                if hint != "-":
                    params.append(("id_token_hint", hint))
                url = add_params_to_uri(endpoint, params)
        resp = response_for(url)
        resp.del_cookie(self.hint_cookie, path="/logout")
        return resp
