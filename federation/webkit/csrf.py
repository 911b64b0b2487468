"""Where an unsafe request carries its CSRF token, read the same way on node and hub.

A script sends the session's token as the `X-CSRF-Token` header; a form posts it in the
hidden `csrf` field. The comparison itself is `federation.websecurity.csrf_equal`. The
login form's own token is keyed by `login_secret`, the same in every process of a server.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "csrf_given", "login_secret"]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def csrf_given(request: web.Request) -> str | None:
    """The token the request sent: the header, else the form field on a form post."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in _FORMS:
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def login_secret(signing_seed: bytes) -> bytes:
    """The key of the login form's pre-session token (`federation.websecurity.login_csrf`),
    derived from the server's signing key seed instead of drawn at start-up: several
    processes of one server behind one address (one database, one key file) must accept
    each other's login forms, and a restart must not void the forms already shown. Only a
    key rotation changes it (forms older than the restart are refused; the user reloads)."""
    return hmac.new(signing_seed, b"peernet/v1/login-form-csrf", hashlib.sha256).digest()
