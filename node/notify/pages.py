"""Notification pages (no JavaScript needed).

    /notifications         own preferences: address, channels, digest, quiet hours
    /admin/notifications   the queue with its failures (retry now) and the on-duty list

Forms post to the same services as the JSON API and re-render with the stable code on a
refusal; a new webhook secret is shown once, on the page that created it.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from node.core.appkeys import SETTINGS
from node.core.context import NodeContext
from node.core.errors import NodeError
from node.core.routes import ALL_ROLES, Route
from node.core.vocabulary import Role
from node.notify import admin, prefs
from node.notify.api import kick, path_id
from node.notify.kinds import TEXT, NotifyChannel, NotifyKind
from node.notify.models import EndpointIn, PrefsIn
from node.web.plumbing import form_body, principal, render

__all__ = ["page_routes"]

ADMIN = frozenset({Role.ADMIN})
KIND_LABELS = {k.value: TEXT[k][0] for k in NotifyKind}


def _fmt(request: web.Request, ms: int | None) -> str:
    if ms is None:
        return ""
    zone = request.app[SETTINGS].zone
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%b %d %H:%M %Z")


async def prefs_page(request: web.Request, *, error: NodeError | None = None,
                     secret: str | None = None, saved: bool = False) -> web.Response:
    ctx = NodeContext.of(request.app)
    mine = await prefs.get_prefs(ctx, principal(request).user_id)
    return render(request, "notify_prefs.html", {
        "prefs": mine, "error": error, "secret": secret, "saved": saved,
        "channels": [c.value for c in NotifyChannel],
        "zone": request.app[SETTINGS].timezone,
    }, status=error.status if error else 200)


async def prefs_post(request: web.Request) -> web.Response:
    try:
        data = await form_body(request, PrefsIn, lists=("channels",))
        out = await prefs.set_prefs(NodeContext.of(request.app), principal(request), data)
    except NodeError as exc:
        return await prefs_page(request, error=exc)
    return await prefs_page(request, secret=out.webhook_secret, saved=True)


async def admin_page(request: web.Request, *, error: NodeError | None = None,
                     secret: str | None = None) -> web.Response:
    ctx = NodeContext.of(request.app)
    items = await admin.deliveries(ctx)
    return render(request, "notify_admin.html", {
        "deliveries": items, "failing": [d for d in items if d.last_error and
                                         d.state.value in ("failing", "dead")],
        "endpoints": await admin.endpoints(ctx), "error": error, "secret": secret,
        "kinds": KIND_LABELS, "channels": [c.value for c in NotifyChannel],
        "when": lambda ms: _fmt(request, ms),
    }, status=error.status if error else 200)


async def retry_post(request: web.Request) -> web.Response:
    try:
        await admin.retry(NodeContext.of(request.app), principal(request), path_id(request))
    except NodeError as exc:
        return await admin_page(request, error=exc)
    kick(request)
    raise web.HTTPSeeOther("/admin/notifications")


async def endpoint_post(request: web.Request) -> web.Response:
    try:
        data = await form_body(request, EndpointIn, lists=("kinds",))
        out = await admin.add_endpoint(NodeContext.of(request.app), principal(request), data)
    except NodeError as exc:
        return await admin_page(request, error=exc)
    return await admin_page(request, secret=out.secret)


async def endpoint_remove_post(request: web.Request) -> web.Response:
    try:
        await admin.remove_endpoint(NodeContext.of(request.app), principal(request),
                                    path_id(request))
    except NodeError as exc:
        return await admin_page(request, error=exc)
    raise web.HTTPSeeOther("/admin/notifications")


async def _prefs_get(request: web.Request) -> web.Response:
    return await prefs_page(request)


async def _admin_get(request: web.Request) -> web.Response:
    return await admin_page(request)


def page_routes() -> list[Route]:
    a = "/admin/notifications"
    return [
        Route("GET", "/notifications", _prefs_get, "page.notify.prefs", ALL_ROLES,
              "Notification preferences"),
        Route("POST", "/notifications", prefs_post, "page.notify.prefs.post", ALL_ROLES,
              "Save notification preferences"),
        Route("GET", a, _admin_get, "page.notify.admin", ADMIN, "Notifications"),
        Route("POST", f"{a}/endpoints", endpoint_post, "page.notify.endpoints.post", ADMIN,
              "Add to the on-duty list"),
        Route("POST", f"{a}/endpoints/{{id}}/remove", endpoint_remove_post,
              "page.notify.endpoints.remove", ADMIN, "Remove from the on-duty list"),
        Route("POST", f"{a}/{{id}}/retry", retry_post, "page.notify.retry", ADMIN,
              "Retry a delivery now"),
    ]


