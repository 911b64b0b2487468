"""Web security shared by the node's and the hub's pages: session and API tokens, cookies,
CSRF, security headers and a request body limit (login throttling: `federation.login_throttle`).

- Tokens are 32 random bytes as base64url. Only their SHA-256 (`token_hash`) is stored, so a
  database dump gives no usable session or API token; a lookup by hash is one indexed read
  (no password hash on the per-request path).
- Session cookies are `HttpOnly; SameSite=Strict; Path=/` (plus `Secure` behind https).
- CSRF: synchronizer token. Each session row holds its own random CSRF token; every form
  carries it in a hidden field (`csrf`) and scripts may send it as `X-CSRF-Token`. It is
  compared in constant time. Unsafe requests authenticated by a bearer token need none (a
  browser never attaches one by itself). Before login there is no session: the login form
  is bound to a short-lived pre-session cookie instead (`login_csrf`).
- `security_headers` sets CSP (no inline script or style, no framing, forms post only to
  self), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy:
  no-referrer` and `Cache-Control: no-store` on every response except static files.
- `body_limit` refuses a declared `Content-Length` over the limit before reading it (413,
  `FederationError(too_large)`); give the application the same `client_max_size` so chunked
  bodies are cut at the same size. It also reads the body under a deadline
  (`BODY_READ_TIMEOUT_S`, 408 `request_timeout`) so a slow body cannot hold a handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from federation.errors import FedCode, FederationError, error_body
from protocol.encoding import b64u
from protocol.errors import Code

__all__ = [
    "DEFAULT_CSP",
    "body_limit",
    "clear_cookie",
    "csrf_equal",
    "login_csrf",
    "new_token",
    "security_headers",
    "set_session_cookie",
    "token_hash",
]

# A whole request body must arrive within this (64 KiB over a poor mobile link: seconds).
BODY_READ_TIMEOUT_S = 30.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def new_token(nbytes: int = 32) -> str:
    """A fresh random token (base64url, no padding)."""
    return b64u(secrets.token_bytes(nbytes))


def token_hash(token: str) -> str:
    """What is stored for a token: SHA-256 of its ASCII bytes, base64url."""
    return b64u(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest())


def csrf_equal(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing value on either side never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"),
                               given.encode("utf-8", "surrogatepass"))


def login_csrf(secret: bytes, pre_session: str) -> str:
    """The login form's CSRF token, bound to the pre-session cookie by an HMAC."""
    mac = hmac.new(secret, b"peernet/v1/login-csrf\0" + pre_session.encode("utf-8", "replace"),
                   hashlib.sha256)
    return b64u(mac.digest())


def set_session_cookie(
    response: web.StreamResponse, name: str, value: str, *, max_age: int, secure: bool
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="Strict", secure=secure
    )


def clear_cookie(response: web.StreamResponse, name: str, *, secure: bool) -> None:
    response.set_cookie(
        name, "", max_age=0, path="/", httponly=True, samesite="Strict", secure=secure
    )


def security_headers(csp: str = DEFAULT_CSP, static_prefix: str = "/static/") -> Middleware:
    """Middleware adding the security headers (see module docstring) to every response."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _apply(exc, csp, cache=not request.path.startswith(static_prefix))
            raise
        _apply(response, csp, cache=not request.path.startswith(static_prefix))
        return response

    return middleware


def _apply(response: web.StreamResponse, csp: str, *, cache: bool) -> None:
    if response.prepared:
        return
    h = response.headers
    h.setdefault("Content-Security-Policy", csp)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if cache:
        h.setdefault("Cache-Control", "no-store")


def body_limit(max_bytes: int, read_timeout_s: float | None = None, *,
               exempt_prefix: str | None = None) -> Middleware:
    """Middleware refusing a declared body over `max_bytes` (FederationError too_large), and
    a body that does not arrive within `read_timeout_s` (default `BODY_READ_TIMEOUT_S`):
    408 `request_timeout`. aiohttp has no timeout of its own on a started body, so a client
    dribbling bytes (slowloris) would hold a handler forever; the body is read here, once,
    and handlers get it from aiohttp's cache (`read()`, `post()`, `json()`). Paths under
    `exempt_prefix` (the federation send route, which reads its larger batches itself under
    the same deadline) are left alone."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if exempt_prefix is not None and request.path.startswith(exempt_prefix):
            return await handler(request)
        length = request.content_length
        if length is not None and length > max_bytes:
            raise FederationError(Code.TOO_LARGE, f"request body over {max_bytes} bytes")
        if request.body_exists and request.content.is_eof():
            await request.read()  # all of it arrived with the headers: nothing to wait for
        elif request.body_exists:
            timeout = read_timeout_s if read_timeout_s is not None else BODY_READ_TIMEOUT_S
            try:
                async with asyncio.timeout(timeout):
                    await request.read()
            except TimeoutError:  # answered here: each server's error table maps its own
                return web.json_response(error_body(
                    FedCode.REQUEST_TIMEOUT, f"request body not received within {timeout:g} s"),
                    status=408, headers={"Connection": "close"})
        return await handler(request)

    return middleware
