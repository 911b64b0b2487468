"""Where an unsafe request carries its CSRF token, read the same way on node and hub.

A script sends the session's token as the `X-CSRF-Token` header; a form posts it in the
hidden `csrf` field. The comparison itself is `federation.websecurity.csrf_equal`.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "csrf_given"]

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
