"""The login form, its post and logout, once for both servers.

The form is bound to a pre-session cookie (`login_csrf`, an HMAC with the server's secret);
a post without the matching token is refused before any password is checked. Username and
password are plain form fields; a refused login (wrong password, throttled) shows the form
again with the reason and, when throttled, `Retry-After`. A good login sets the session
cookie, clears the pre-session cookie and goes to the server's landing page.

What differs per server (its cookie names, user store, throttle, error type, landing page)
comes through `LoginBackend`; the kit never imports node or hub.

With OpenID Connect configured (`federation.webkit.oidc`, `app[OIDC_FLOW]`), the form also
offers the provider's sign-in; when `only` is set the password form is gone and a password
post is refused (403, `oidc_required`, nothing checked); sign-out of a browser that signed
in through the provider goes on to the provider's end-session page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from federation.websecurity import (
    clear_cookie,
    csrf_equal,
    login_csrf,
    new_token,
    set_session_cookie,
)

__all__ = ["OIDC_FLOW", "PRE_SESSION_S", "SHOWN_CODES", "IssuedSession", "LoginBackend",
           "LoginFlow", "OidcHook", "Refusal"]

PRE_SESSION_S = 3600  # how long a login form stays usable
SHOWN_CODES = frozenset({"bad_credentials", "throttled"})  # refusals the form itself shows


class OidcHook(Protocol):
    """What the login flow needs of `federation.webkit.oidc.OidcFlow` (registered as
    `app[OIDC_FLOW]` when the server has `[oidc]`), without importing it."""

    @property
    def settings(self) -> Any: ...  # OidcSettings

    async def end_session(self, request: web.Request,
                          response_for: Callable[[str | None], web.StreamResponse]
                          ) -> web.StreamResponse: ...


OIDC_FLOW = web.AppKey("peernet_oidc_flow", OidcHook)


@runtime_checkable
class Refusal(Protocol):
    """A server error (NodeError, HubError): a stable `code` (a StrEnum), a plain-words
    `message` (lower case, no full stop) and its HTTP `status`. A throttled one also has
    `retry_after_s`, sent as `Retry-After`."""

    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def status(self) -> int: ...


class IssuedSession(Protocol):
    """A new browser session: the cookie value and how long it lives."""

    @property
    def cookie(self) -> str: ...
    @property
    def max_age_s(self) -> int: ...


class LoginBackend(Protocol):
    """One server's side of the login flow."""

    @property
    def pre_cookie(self) -> str: ...  # the pre-session cookie's name
    @property
    def session_cookie(self) -> str: ...
    @property
    def landing(self) -> str: ...  # where a good login goes
    @property
    def missing_status(self) -> int: ...  # status of the form when a field is missing
    @property
    def empty_username_missing(self) -> bool: ...  # an empty username counts as missing

    def secret(self, request: web.Request) -> bytes: ...  # the login_csrf HMAC key
    def secure_cookies(self, request: web.Request) -> bool: ...
    def render(self, request: web.Request, template: str, context: Mapping[str, Any],
               status: int) -> web.Response: ...
    def csrf_refused(self, message: str) -> Exception: ...  # the server's csrf_failed error

    async def login(self, request: web.Request, username: str,
                    password: str) -> IssuedSession:
        """Check the password (throttled). A refusal with a code in `SHOWN_CODES` shows
        the form again with its message; any other error propagates."""
        ...

    async def logout(self, request: web.Request) -> None:
        """Check the caller (and the CSRF token) and end the session."""
        ...


class LoginFlow:
    """The handlers of `GET /login`, `POST /login` and `POST /logout` over one backend."""

    def __init__(self, backend: LoginBackend) -> None:
        self.backend = backend

    def page(self, request: web.Request, error: str | None = None,
             status: int = 200, error_code: str | None = None) -> web.Response:
        b = self.backend
        pre = request.cookies.get(b.pre_cookie) or new_token()
        oidc = _oidc_settings(request)
        resp = b.render(request, "login.html",
                        {"error": error, "login_csrf": login_csrf(b.secret(request), pre),
                         "oidc": oidc, "error_code": error_code}, status)
        set_session_cookie(resp, b.pre_cookie, pre, max_age=PRE_SESSION_S,
                           secure=b.secure_cookies(request))
        return resp

    async def get(self, request: web.Request) -> web.Response:
        return self.page(request)

    async def post(self, request: web.Request) -> web.Response:
        b = self.backend
        form = await request.post()
        pre = request.cookies.get(b.pre_cookie)
        given = form.get("csrf")
        expected = login_csrf(b.secret(request), pre) if pre else None
        if not csrf_equal(expected, given if isinstance(given, str) else None):
            raise b.csrf_refused("the login form expired; reload the page")
        oidc = _oidc_settings(request)
        if oidc is not None and oidc.only:
            return self.page(request, "This server signs you in through your agency's "
                             "account only.", 403, "oidc_required")
        username, password = form.get("username"), form.get("password")
        if (not isinstance(username, str) or not isinstance(password, str)
                or (b.empty_username_missing and not username)):
            return self.page(request, "Enter your username and password.", b.missing_status)
        try:
            session = await b.login(request, username, password)
        except Exception as exc:
            if not isinstance(exc, Refusal) or exc.code not in SHOWN_CODES:
                raise
            page = self.page(request, exc.message[:1].upper() + exc.message[1:] + ".",
                             exc.status)
            wait = getattr(exc, "retry_after_s", None)
            if wait is not None:
                page.headers["Retry-After"] = str(wait)
            return page
        secure = b.secure_cookies(request)
        resp = web.HTTPSeeOther(b.landing)
        set_session_cookie(resp, b.session_cookie, session.cookie, max_age=session.max_age_s,
                           secure=secure)
        clear_cookie(resp, b.pre_cookie, secure=secure)
        raise resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        b = self.backend
        await b.logout(request)
        secure = b.secure_cookies(request)

        def answer(end_session: str | None) -> web.StreamResponse:
            resp: web.StreamResponse
            if end_session is None:
                resp = web.Response(status=303, headers={"Location": "/login"})
            else:
                resp = b.render(request, "oidc_signed_out.html",
                                {"end_session": end_session}, 200)
            clear_cookie(resp, b.session_cookie, secure=secure)
            return resp

        flow = request.app.get(OIDC_FLOW)
        return answer(None) if flow is None else await flow.end_session(request, answer)


def _oidc_settings(request: web.Request) -> Any:
    """The server's `OidcSettings`, or None without OpenID Connect."""
    flow = request.app.get(OIDC_FLOW)
    return None if flow is None else flow.settings
