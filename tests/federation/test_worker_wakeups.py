"""The outbox worker sleeps until work is due instead of polling: an idle node runs no pass
that finds nothing; a commit that queues wakes it at once; a row due later is sent when it
falls due, without a kick. Real servers with the system clock, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from federation.clock import SystemClock
from federation.outbox import enqueue_many, enqueue_row
from tests.federation.helpers import TEST_TYPE, Recorder, envelope, send
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]


async def _until(cond: Callable[[], bool], seconds: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > seconds:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_the_worker_sleeps_until_work_is_due(network: NetworkFactory, db: str) -> None:
    net = await network(2, db=db, clock=SystemClock(), workers=True)
    a, b = net.nodes
    got = Recorder()
    b.on(TEST_TYPE, got)
    fed = a.fed
    fed._loop.poll_ms = 50  # the old loop would now pass every 50 ms
    passes: list[int] = []
    run_once = fed.run_once

    async def counted() -> int:
        n = await run_once()
        passes.append(n)
        return n

    fed.run_once = counted  # type: ignore[method-assign]
    await asyncio.sleep(0.3)  # whatever start-up left settles
    passes.clear()
    await asyncio.sleep(0.6)
    assert passes == []  # idle: no pass at all (the 50 ms poll ran about twelve)

    await send(a, b.node_id)  # the commit kicks the worker
    await _until(lambda: len(got.seen) == 1 and 1 in passes, 3)
    assert passes.count(0) <= 1  # at most one racing the kick (start-up's last kick)

    # A row due in 400 ms, queued with one kick: sent when it falls due, with no pass that
    # finds nothing in between.
    passes.clear()
    now = a.clock.now_ms()
    env = envelope(net, a, b)
    import json

    msg_id = json.loads(env)["msg_id"]
    async with a.db.write() as conn:
        await enqueue_many(conn, [enqueue_row(
            destination=b.node_id, msg_id=msg_id, msg_type=TEST_TYPE.value, envelope=env,
            created_ts=now, expires_ts=now + 3_600_000, due_ts=now + 400)])
    fed.kick()
    waited = await _until(lambda: msg_id in got.seen and 1 in passes, 3)
    assert waited >= 0.3
    assert passes.count(0) <= 2  # the kicked pass (not yet due), perhaps one racing an ack
    assert 1 in passes
