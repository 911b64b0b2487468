"""`PassLoop`: the background loop of the outbox worker and the hub relay.

Stopping must end the loop whatever it is doing. On Python 3.11 `asyncio.wait_for` returns
the inner result instead of raising when a cancellation arrives in the same turn as the
inner wait completes, so a kick just before `stop()` (a commit, the linger timer, the
demo's settle) could leave the loop running and `stop()` waiting forever.
"""

from __future__ import annotations

import asyncio

import pytest

from federation.worker import PassLoop, stop_task


def _running(name: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name and not t.done()]


async def _stopped_within(loop: PassLoop, seconds: float) -> bool:
    """`loop.stop()` returned in time and the loop's task has ended."""
    stopper = asyncio.ensure_future(loop.stop())
    done, _ = await asyncio.wait([stopper], timeout=seconds)
    return stopper in done and not _running(loop.name)


@pytest.mark.parametrize("turns", range(8))
async def test_stop_right_after_a_kick_ends_the_loop(turns: int) -> None:
    passes = 0

    async def run_pass() -> None:
        nonlocal passes
        passes += 1

    loop = PassLoop("t", run_pass, poll_ms=60_000)
    loop.start()
    await asyncio.sleep(0.02)  # the start-up pass ran; the loop now waits for a kick
    before = passes
    loop.kick()
    for _ in range(turns):  # cancel at each point of the wake-up, the racy one included
        await asyncio.sleep(0)
    assert await _stopped_within(loop, 2)
    settled = passes
    assert settled in (before, before + 1)
    await asyncio.sleep(0.05)
    assert passes == settled  # no pass after stop


async def test_stop_during_a_pass_cancels_the_pass() -> None:
    started = asyncio.Event()
    cancelled = False

    async def run_pass() -> None:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled = True
            raise

    loop = PassLoop("t", run_pass, poll_ms=60_000)
    loop.start()
    await started.wait()
    assert await _stopped_within(loop, 2)
    assert cancelled


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    second = asyncio.Event()

    async def run_pass() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        second.set()

    loop = PassLoop("t", run_pass, poll_ms=60_000)
    loop.start()
    for _ in range(3):
        await asyncio.sleep(0)
    loop.kick()
    async with asyncio.timeout(2):
        await second.wait()
    await loop.stop()
    assert "t pass failed" in caplog.text


async def test_the_poll_runs_a_pass_without_a_kick() -> None:
    calls = 0
    third = asyncio.Event()

    async def run_pass() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()

    loop = PassLoop("t", run_pass, poll_ms=10)
    loop.start()
    async with asyncio.timeout(2):
        await third.wait()
    await loop.stop()


async def test_stop_task_cancels_again_a_task_that_swallowed_the_first() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass  # swallowed once
        await asyncio.sleep(60)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await stop_task(task)
    assert task.cancelled()


async def test_stop_task_raises_what_the_task_ended_with() -> None:
    async def failing() -> None:
        raise ValueError("bad")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="bad"):
        await stop_task(task)


async def test_stop_task_keeps_the_callers_own_cancellation() -> None:
    resisting = True

    async def stubborn() -> None:
        while resisting:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                pass  # does not end by cancellation while resisting

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0.05)
    stopper.cancel()
    done, _ = await asyncio.wait([stopper], timeout=2)
    assert stopper in done and stopper.cancelled()  # the caller's cancel went through
    assert not task.done()
    resisting = False
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.done()
