"""`federation.leader_lock.leader`: of two contenders for one pass, one leads and the other
skips; the lock is free again once the block ends, also when the holder is cancelled.
PostgreSQL (two engines: two processes' pools) and SQLite (the file lock)."""

from __future__ import annotations

import asyncio

from federation.database import make_engine
from federation.leader_lock import leader


async def test_one_of_two_leads_and_the_lock_comes_back(db_url: str) -> None:
    one, two = make_engine(db_url), make_engine(db_url)
    try:
        inside = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> bool:
            async with leader(one, "release") as lead:
                inside.set()
                await release.wait()
                return lead

        task = asyncio.create_task(holder())
        await inside.wait()
        async with leader(two, "release") as lead:
            assert lead is False  # the other process holds it: skip this pass
        async with leader(two, "another-pass") as lead:
            assert lead is True  # names are separate locks
        release.set()
        assert await task is True
        async with leader(two, "release") as lead:
            assert lead is True  # free again

        # A holder cancelled mid-pass does not keep the lock.
        inside.clear()
        release.clear()
        task = asyncio.create_task(holder())
        await inside.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with leader(two, "release") as lead:
            assert lead is True
    finally:
        await one.dispose()
        await two.dispose()
