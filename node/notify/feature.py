"""Notifications (DESIGN section 12): the room's `setup(app)`, listed in
`node.web.app.FEATURES`.

Module map: `kinds` (what a notification can be about and the fixed words it says),
`db` (tables), `queue` (queueing in the event's own transaction: the hooks the activation
and follow-up code call), `reminders` (follow-ups falling due), `schedule` (quiet hours,
digest, backoff), `message` (the one message of a batch), `addresses` (webhook URL and
mail address checks), `transport` (SMTP and signed webhooks), `dispatch` (the sender
pass), `runtime` (the background loop), `prefs` / `admin` (services), `api` / `pages`.
"""

from __future__ import annotations

from aiohttp import web

from node.core.routes import NavItem, add_nav, add_routes
from node.core.vocabulary import Role
from node.notify.api import api_routes
from node.notify.pages import page_routes
from node.notify.runtime import notify_ctx

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    add_routes(app, [*api_routes(), *page_routes()])
    add_nav(app, NavItem("Notifications", "/admin/notifications", frozenset({Role.ADMIN}), 80))
    add_nav(app, NavItem("Alerts", "/notifications", frozenset(Role) - {Role.ADMIN}, 80))
    app.cleanup_ctx.append(notify_ctx)
