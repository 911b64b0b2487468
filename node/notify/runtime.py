"""The running sender: a `Notifier` on the app (`NOTIFIER`) and its background `PassLoop`.

Started after the core's context (the database is migrated), stopped before it: the loop
first, then the HTTP client session the webhooks use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from federation.worker import PassLoop
from node.core.appkeys import CLOCK, DB, SETTINGS
from node.notify.dispatch import Notifier

__all__ = ["NOTIFIER", "notify_ctx"]

NOTIFIER = web.AppKey("peernet_notifier", Notifier)


async def notify_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    notifier = Notifier(app[DB], settings, app[CLOCK])
    notifier.http = aiohttp.ClientSession()
    loop = PassLoop("notify", notifier.run_once, int(settings.notify_poll_s * 1000))
    notifier.loop = loop
    app[NOTIFIER] = notifier
    loop.start()
    try:
        yield
    finally:
        await loop.stop()
        await notifier.http.close()
