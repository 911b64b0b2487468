"""Bearer-token lookups kept for a moment, and how every node process forgets them.

A script or an integration sends bursts of requests with one token; looking it up on each
costs a database round trip (on PostgreSQL, with 16 clients writing encounters, the lookup
was 28 % of the event loop's time). A lookup is therefore kept `ttl_ms` (2 s, injected
clock), and forgotten at once when users or tokens change:

- in this process, every service that changes a user or a token calls `clear()`;
- on PostgreSQL, where several node processes (and the CLI) share the database, the
  `auth_notify_0001` triggers on `users` and `api_tokens` send `NOTIFY peernet_auth` in the
  changing transaction, so the notice is delivered when, and only if, it commits, whatever
  wrote it (another process, the CLI, an administrator's SQL). `listen()` holds one
  connection on that channel and clears the cache on each notice. The cache is used only
  while that connection is up: when it drops, the cache is emptied and off until the
  listener is back, so no notice can be missed unseen. The TTL bounds what a silently
  broken connection could hide.

A lookup that was in flight when a notice came must not refill the cache with what it read
before the change: `epoch` counts the clears, and `put` keeps an entry only if no clear
happened since the lookup began (`begin()`).

On SQLite a database has one serving process; a CLI change in another process is seen
within the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["CHANNEL", "AuthCache", "listen"]

log = logging.getLogger("peernet.node.auth")

CHANNEL = "peernet_auth"
RETRY_S = 1.0  # first wait before reconnecting the listener, doubled up to MAX_RETRY_S
MAX_RETRY_S = 30.0


class AuthCache:
    """token hash -> (valid until, principal), with the clear counter and the switch."""

    def __init__(self, *, enabled: bool, ttl_ms: int = 2_000, max_entries: int = 10_000):
        self.enabled = enabled
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self.epoch = 0
        self._entries: dict[str, tuple[int, Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str, now_ms: int) -> Any:
        """The cached principal, or None (absent, expired or the cache is off)."""
        if not self.enabled:
            return None
        hit = self._entries.get(token_hash)
        if hit is None or hit[0] <= now_ms:
            return None
        return hit[1]

    def begin(self) -> int:
        """Call before a lookup; hand the result to `put`."""
        return self.epoch

    def put(self, token_hash: str, principal: Any, now_ms: int, expires_at: int | None,
            began: int) -> None:
        if not self.enabled or began != self.epoch:
            return  # off, or users/tokens changed while this lookup ran
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        until = now_ms + self.ttl_ms
        self._entries[token_hash] = (min(until, expires_at or until), principal)

    def forget(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def set_enabled(self, on: bool) -> None:
        self.clear()
        self.enabled = on


async def listen(engine: AsyncEngine, cache: AuthCache) -> None:
    """Run forever (PostgreSQL): keep a connection listening on `CHANNEL`, clearing `cache`
    on every notice; the cache is on only while it listens."""
    wait = RETRY_S
    while True:
        try:
            async with _listening(engine, cache) as lost:
                wait = RETRY_S
                await lost.wait()
        except asyncio.CancelledError:
            cache.set_enabled(False)
            raise
        except Exception as exc:  # noqa: BLE001 - the database may be away; try again
            log.warning("token cache off: cannot listen for changes (%s); again in %g s",
                        type(exc).__name__, wait)
        cache.set_enabled(False)
        await asyncio.sleep(wait)
        wait = min(wait * 2, MAX_RETRY_S)


@contextlib.asynccontextmanager
async def _listening(engine: AsyncEngine, cache: AuthCache) -> AsyncIterator[asyncio.Event]:
    raw = await engine.raw_connection()
    conn: Any = raw.driver_connection
    raw.detach()  # kept out of the pool for its whole life
    lost = asyncio.Event()

    def notice(*_: object) -> None:
        cache.clear()

    def terminated(*_: object) -> None:
        cache.set_enabled(False)
        lost.set()

    try:
        conn.add_termination_listener(terminated)
        await conn.add_listener(CHANNEL, notice)
        cache.set_enabled(True)  # from here on, every committed change reaches `notice`
        yield lost
    finally:
        cache.set_enabled(False)
        with contextlib.suppress(Exception):
            await asyncio.shield(conn.close(timeout=2))
