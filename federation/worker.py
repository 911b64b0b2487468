"""The background loop shared by the node's outbox worker and the hub relay.

A pass runs when something kicks the loop (a commit queued work, an ack or a peer came
back) or every `poll_ms` otherwise; a failing pass is logged and the loop goes on. A pass
that knows when the next work is due says so with `wake_in(ms)`: the loop then sleeps until
then (or a kick) instead of polling every `poll_ms` and finding nothing.

The wait between passes uses `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11
`wait_for` returns the inner result instead of raising when a cancellation arrives in the
turn the wait completes, so a kick just before `stop()` left the loop running and `stop()`
waiting for it forever. `stop()` also sets a flag the loop checks, whatever swallows a
cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["PassLoop", "drain", "stop_task"]

log = logging.getLogger("peernet.federation")

# How long `stop_task` waits before cancelling a task again (one that swallowed the first).
_RECANCEL_S = 1.0


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait until it has ended; an exception it ended with is
    raised here. Unlike `suppress(CancelledError)` around `await task`, the caller's own
    cancellation is not swallowed; a task that swallows one cancellation gets another."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_RECANCEL_S)
    if not task.cancelled():
        task.result()


class PassLoop:
    def __init__(self, name: str, run_pass: Callable[[], Awaitable[object]], poll_ms: int) -> None:
        self.name = name
        self.poll_ms = poll_ms
        self._run_pass = run_pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake_in: int | None = None

    def wake_in(self, ms: int) -> None:
        """Called by a pass: the next pass is due in `ms` (this wait only; a kick still
        wakes the loop sooner)."""
        self._wake_in = max(0, ms)

    def kick(self) -> None:
        """Wake the loop (something became due)."""
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.kick()  # replay what was pending at shutdown

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            task, self._task = self._task, None
            await stop_task(task)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake_in = None
            try:
                await self._run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", self.name)
            if self._stopping:
                return
            wait_ms = self.poll_ms if self._wake_in is None else self._wake_in
            try:
                async with asyncio.timeout(wait_ms / 1000):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()


async def drain(run_once: Callable[[], Awaitable[int]], max_passes: int = 20) -> None:
    """Run passes until one finds nothing due (tests and benchmarks)."""
    for _ in range(max_passes):
        if not await run_once():
            return
