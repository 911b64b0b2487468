"""The background loop shared by the node's outbox worker and the hub's relay.

A pass runs when something kicks the loop (a commit queued work, an ack or a peer came
back) or every `poll_ms` otherwise; a failing pass is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["PassLoop", "drain"]

log = logging.getLogger("peernet.federation")


class PassLoop:
    def __init__(self, name: str, run_pass: Callable[[], Awaitable[object]], poll_ms: int) -> None:
        self.name = name
        self.poll_ms = poll_ms
        self._run_pass = run_pass
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Wake the loop (something became due)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)
        self.kick()  # replay what was pending at shutdown

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_ms / 1000)
            self._wake.clear()


async def drain(run_once: Callable[[], Awaitable[int]], max_passes: int = 20) -> None:
    """Run passes until one finds nothing due (tests and benchmarks)."""
    for _ in range(max_passes):
        if not await run_once():
            return
