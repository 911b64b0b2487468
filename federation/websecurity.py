"""Web security shared by the node's and the hub's pages: session and API tokens, cookies,
CSRF, login throttling, security headers and a request body limit.

- Tokens are 32 random bytes as base64url. Only their SHA-256 (`token_hash`) is stored, so a
  database dump gives no usable session or API token; a lookup by hash is one indexed read
  (no password hash on the per-request path).
- Session cookies are `HttpOnly; SameSite=Strict; Path=/` (plus `Secure` behind https).
- CSRF: synchronizer token. Each session row holds its own random CSRF token; every form
  carries it in a hidden field (`csrf`) and scripts may send it as `X-CSRF-Token`. It is
  compared in constant time. Unsafe requests authenticated by a bearer token need none (a
  browser never attaches one by itself). Before login there is no session: the login form
  is bound to a short-lived pre-session cookie instead (`login_csrf`).
- Login throttling counts failures per user and per remote address in a sliding window
  (injected clock) and refuses further attempts for a lock-out period once either passes its
  limit. It lives in process memory: a restart forgets it, and each process of a
  multi-process deployment counts on its own (the limits are per process).
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
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from federation.clock import Clock
from federation.errors import FedCode, FederationError, error_body
from protocol.encoding import b64u
from protocol.errors import Code

__all__ = [
    "DEFAULT_CSP",
    "LoginThrottle",
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


@dataclass
class LoginThrottle:
    """Failures per user and per address in a window; a lock-out once a limit is passed."""

    clock: Clock
    per_user: int = 5
    per_address: int = 20
    window_ms: int = 15 * 60_000
    lockout_ms: int = 15 * 60_000
    max_keys: int = 100_000
    _failures: dict[str, deque[int]] = field(default_factory=dict, repr=False)
    _locked_until: dict[str, int] = field(default_factory=dict, repr=False)

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        return "u:" + user.strip().casefold(), "a:" + address

    def retry_after_ms(self, user: str, address: str) -> int:
        """0 when an attempt may proceed, else milliseconds until it may."""
        now = self.clock.now_ms()
        wait = 0
        for key in self._keys(user, address):
            until = self._locked_until.get(key, 0)
            if until > now:
                wait = max(wait, until - now)
            elif until:
                del self._locked_until[key]
        return wait

    def failure(self, user: str, address: str) -> None:
        now = self.clock.now_ms()
        if len(self._failures) > self.max_keys:
            self._prune(now)
        for key, limit in zip(self._keys(user, address), (self.per_user, self.per_address),
                              strict=True):
            q = self._failures.setdefault(key, deque())
            q.append(now)
            while q and q[0] <= now - self.window_ms:
                q.popleft()
            if len(q) >= limit:
                self._locked_until[key] = now + self.lockout_ms
                q.clear()

    def success(self, user: str, address: str) -> None:
        self._failures.pop(self._keys(user, address)[0], None)

    def _prune(self, now: int) -> None:
        for key in [k for k, q in self._failures.items() if not q or q[-1] <= now - self.window_ms]:
            del self._failures[key]


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
        if request.body_exists:
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
