"""Engines made by `federation.database.make_engine` on PostgreSQL (hub, helper, CLI) keep
their connections: waves of concurrent reads beyond what is open never open and close
overflow connections (each one a server process, type introspection and statements
prepared again)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, text

from federation.database import PG_POOL, make_engine


async def test_waves_of_reads_reuse_the_kept_connections(pg_admin_url: str) -> None:
    from peernet.throwaway_pg import create_database, drop_database

    url = await create_database(pg_admin_url, "t_pool_waves")
    engine = make_engine(url)
    opened: list[int] = []
    event.listen(engine.sync_engine, "connect", lambda *_: opened.append(1))
    try:
        async def read() -> int:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(0.01)"))
                return 1

        for _ in range(5):  # waves of 40 readers; at most PG_POOL's size at once
            assert sum(await asyncio.gather(*(read() for _ in range(40)))) == 40
        assert len(opened) <= PG_POOL["pool_size"], len(opened)
        assert engine.sync_engine.pool.overflow() <= 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
        await drop_database(pg_admin_url, "t_pool_waves")
