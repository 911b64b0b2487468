"""Fetching the peers' state statistics on a schedule, so the national view stays current
without an operator.

A background `federation.worker.PassLoop` wakes every `POLL_MS` (real time) and, when the
hub's clock has reached the next due time, fetches every peer's document for the last 12
complete months (`hub.national.fetch`), then sets the next due time `REFRESH_MS` later. The
first fetch is due `FIRST_MS` after start (a hub that has only just started has often not
yet been given its compact). A failed or refused peer is logged and retried at the next due
time; the operator route `POST /api/v1/national/refresh` fetches at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from federation.worker import PassLoop
from hub.appkeys import CLOCK, DB, FEDERATION, SETTINGS
from hub.national.fetch import Fetcher, FetchOutcome, fetch_all
from hub.national.view import peer_list
from hub.stats.api import filter_from_query

__all__ = ["FIRST_MS", "POLL_MS", "REFRESH_MS", "SCHEDULE", "Schedule", "refresh"]

REFRESH_MS = 6 * 3_600_000
FIRST_MS = 60_000
POLL_MS = 60_000


async def refresh(app: web.Application, month_from: str, month_to: str) -> list[FetchOutcome]:
    """Fetch, verify and keep every peer's document for the range now."""
    client = app[FEDERATION].client
    if client is None:
        return []
    fetcher = Fetcher(app[SETTINGS].hub_id, client.signer, client.http, app[DB], app[CLOCK])
    return await fetch_all(fetcher, peer_list(app), month_from, month_to)


class Schedule:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.next_due: int | None = None
        self.last: list[FetchOutcome] = []

    async def run_pass(self) -> Any:
        now = self.app[CLOCK].now_ms()
        if self.next_due is None:
            self.next_due = now + FIRST_MS
        if now < self.next_due:
            return None
        f = filter_from_query({}, now)
        self.last = await refresh(self.app, f.month_from, f.month_to)
        self.next_due = self.app[CLOCK].now_ms() + REFRESH_MS
        return None


SCHEDULE: web.AppKey[Schedule] = web.AppKey("peernet_hub_national_schedule", Schedule)


async def schedule_ctx(app: web.Application) -> AsyncIterator[None]:
    loop = PassLoop("national-statistics", app[SCHEDULE].run_pass, POLL_MS)
    loop.start()
    try:
        yield
    finally:
        await loop.stop()
