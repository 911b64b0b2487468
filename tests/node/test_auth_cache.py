"""The bearer-token cache (`node.core.auth_cache`): a burst of requests with one token costs
one lookup on both engines; on PostgreSQL a change made by another process (another node
app over the same database, or plain SQL) empties every process's cache through
`NOTIFY peernet_auth`, and the cache is off while its listener is down.

The clock is a FakeClock that never moves, so only a notice can end a cached lookup here."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import event, text

from federation.database import make_engine
from node.core.auth_cache import AuthCache
from tests.node.conftest import MakeNode, Node


def _count_lookups(node: Node) -> list[int]:
    seen = [0]

    @event.listens_for(node.ctx.db.engine.sync_engine, "before_cursor_execute")
    def _on(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "api_tokens" in statement and "token_hash" in statement:
            seen[0] += 1

    return seen


async def _until(cond: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await cond():
            return True
        await asyncio.sleep(0.02)
    return False


async def _me(node: Node, token: str) -> int:
    r = await node.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    await r.read()
    return r.status


async def _listening(node: Node) -> bool:
    return node.ctx.db.auth_cache.enabled


async def test_one_lookup_per_burst_and_another_process_revocation_ends_it(
    make_node: MakeNode, db_url: str
) -> None:
    a = await make_node()
    b = await make_node(seed=False)  # a second node process over the same database
    assert await _until(lambda: _listening(b)), "the token cache never came on"
    lookups = _count_lookups(b)
    token = a.tokens["sup1"]
    for _ in range(5):
        assert await _me(b, token) == 200
    assert lookups[0] == 1, lookups

    tid = (await a.get("sup1", "/api/v1/tokens"))[1]["items"][0]["id"]
    r = await a.client.delete(f"/api/v1/tokens/{tid}", headers=a.auth("sup1"))
    assert r.status == 200, await r.json()
    if db_url.startswith("sqlite"):
        # One serving process per file: another one's change is seen within the TTL.
        assert await _me(b, token) == 200
        b.clock.advance(b.ctx.db.auth_cache.ttl_ms + 1)
        assert await _me(b, token) == 401
        return
    assert await _until(lambda: _me_is(b, token, 401)), "revoked token still accepted"

    # A change made outside any node process (an administrator's SQL) ends it too.
    token2 = a.tokens["sup2"]
    assert await _me(b, token2) == 200
    before = lookups[0]
    assert await _me(b, token2) == 200 and lookups[0] == before  # cached
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE users SET active = false WHERE username = 'sup2'"))
    finally:
        await engine.dispose()
    assert await _until(lambda: _me_is(b, token2, 401)), "deactivated user still accepted"
    assert await _me(b, a.tokens["coord"]) == 200  # others are looked up again and pass


async def _me_is(node: Node, token: str, status: int) -> bool:
    return await _me(node, token) == status


async def test_cache_is_off_while_its_listener_is_down(
    make_node: MakeNode, db_url: str
) -> None:
    if db_url.startswith("sqlite"):
        a = await make_node()
        assert a.ctx.db.auth_cache.enabled  # no listener: on from the start
        return
    a = await make_node()
    assert await _until(lambda: _listening(a))
    lookups = _count_lookups(a)
    token = a.tokens["sup1"]
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            killed = (await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            ))).scalars().all()
        assert killed == [True], killed
        assert await _until(lambda: _not(a.ctx.db.auth_cache.enabled), 2.0)
        # While nobody listens, a change could go unseen: every request looks up.
        before = lookups[0]
        for _ in range(3):
            assert await _me(a, token) == 200
        assert lookups[0] - before == 3
        async with engine.begin() as conn:  # revoked while the listener is down
            await conn.execute(text(
                "UPDATE api_tokens SET revoked_at = 1 WHERE user_id = "
                "(SELECT id FROM users WHERE username = 'sup1')"))
        assert await _me(a, token) == 401
    finally:
        await engine.dispose()
    # The listener comes back by itself and the cache with it.
    assert await _until(lambda: _listening(a), 5.0), "the listener did not reconnect"
    coord = a.tokens["coord"]
    before = lookups[0]
    for _ in range(3):
        assert await _me(a, coord) == 200
    assert lookups[0] - before == 1


async def _not(value: bool) -> bool:
    return not value


def test_a_lookup_that_ran_across_a_change_is_not_kept() -> None:
    cache = AuthCache(enabled=True, ttl_ms=1000)
    began = cache.begin()
    cache.clear()  # a notice arrives while the lookup is in flight
    cache.put("h", "old principal", 0, None, began)
    assert cache.get("h", 1) is None
    began = cache.begin()
    cache.put("h", "p", 0, 500, began)
    assert cache.get("h", 499) == "p"
    assert cache.get("h", 500) is None  # never past the token's own expiry
    cache.set_enabled(False)
    assert cache.get("h", 1) is None and len(cache) == 0
    began = cache.begin()
    cache.put("h", "p", 0, None, began)
    assert len(cache) == 0  # off: nothing kept
