"""Is the hub reachable? A cached probe of the hub's `/healthz` for `/healthz` and metrics.

Asked at most every `CACHE_MS` whatever the scrape or health-check rate, with a short
timeout, so a dead hub never slows a health check for long and a busy one is not flooded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from federation.clock import Clock

__all__ = ["HubProbe", "HubState"]

CACHE_MS = 15_000
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class HubState:
    configured: bool
    reachable: bool
    last_ok_ms: int | None  # the clock's time of the last answer, None: never
    checked_ms: int | None


class HubProbe:
    def __init__(self, clock: Clock, url: Callable[[], str | None],
                 session: Callable[[], aiohttp.ClientSession | None]) -> None:
        self._clock = clock
        self._url = url
        self._session = session
        self._state = HubState(False, False, None, None)
        self._lock = asyncio.Lock()

    async def check(self) -> HubState:
        async with self._lock:
            now = self._clock.now_ms()
            if self._state.checked_ms is not None and now - self._state.checked_ms < CACHE_MS:
                return self._state
            url, http = self._url(), self._session()
            if not url or http is None:
                self._state = HubState(False, False, self._state.last_ok_ms, now)
                return self._state
            ok = False
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    async with http.get(url.rstrip("/") + "/healthz") as resp:
                        ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError, OSError):
                ok = False
            self._state = HubState(True, ok, now if ok else self._state.last_ok_ms, now)
            return self._state
