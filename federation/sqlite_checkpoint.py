"""WAL checkpoints off the event loop, and a WAL file that shrinks again.

SQLite's automatic checkpoint runs inside the COMMIT that crosses `wal_autocheckpoint`
pages, on whatever thread commits: for the inline write connections
(`federation.sqlite_inline`) that is the event loop, which then stalls for the copy of a
thousand pages (10-16 ms measured) or, after a long reader held the WAL open, for seconds.
So inline connections run with `wal_autocheckpoint=0` and `Checkpointer` does the work on a
worker thread on its own connection: after a commit, when the WAL file has grown past
`at_bytes`, one PASSIVE checkpoint (it never takes the write lock, so writers go on);
when that copied every frame and the file is still larger than `limit_bytes`, a TRUNCATE
checkpoint with no busy wait (the frames are already copied, so it holds the write lock
only for the truncation; if a writer is in the way it simply does not truncate).

`journal_size_limit` (the same `limit_bytes`, set on every connection) makes the writer that
restarts the WAL after a complete checkpoint trim the file to the limit, so even without the
TRUNCATE the file returns to at most `limit_bytes` once the readers let go of it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHECKPOINT_AT_BYTES", "WAL_LIMIT_BYTES", "Checkpointer", "checkpoint_file"]

WAL_LIMIT_BYTES = 4 * 1024 * 1024  # journal_size_limit: the WAL's size at rest
CHECKPOINT_AT_BYTES = 4 * 1024 * 1024  # about SQLite's default of 1,000 pages


def checkpoint_file(path: str, limit_bytes: int = WAL_LIMIT_BYTES) -> tuple[int, int, int]:
    """Checkpoint the database file `path` (blocking: call on a worker thread); SQLite's
    (busy, frames in the log, frames checkpointed) of the last checkpoint run."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA journal_size_limit={int(limit_bytes)}")
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and log == done and _size(path + "-wal") > limit_bytes:
            busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(busy), int(log), int(done)
    finally:
        conn.close()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _consume(task: asyncio.Task[tuple[int, int, int]]) -> None:
    if not task.cancelled():
        task.exception()  # a failed checkpoint is retried after the next commit


@dataclass
class Checkpointer:
    """The threaded checkpointer of one SQLite file (see the module notes)."""

    path: str
    limit_bytes: int = WAL_LIMIT_BYTES
    at_bytes: int = CHECKPOINT_AT_BYTES
    runs: int = 0
    _task: asyncio.Task[tuple[int, int, int]] | None = field(default=None, repr=False)
    # One checkpoint at a time: a second one started beside a running one gets busy from
    # SQLite and skips the TRUNCATE, while the running one may have started before the
    # last commits (so copied only part of the log): neither would shrink the file.
    _one: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def wal_path(self) -> str:
        return self.path + "-wal"

    def after_commit(self) -> None:
        """Called after each commit on a connection without autocheckpoint: start one
        checkpoint on a thread when the WAL has grown past `at_bytes` (a stat, ~1 us)."""
        if self._task is not None and not self._task.done():
            return
        if _size(self.wal_path) >= self.at_bytes:
            self._task = asyncio.ensure_future(self.run())
            self._task.add_done_callback(_consume)

    def run(self) -> Coroutine[Any, Any, tuple[int, int, int]]:
        """One checkpoint on a worker thread (counted in `runs` when asked for), after the
        one already running if any, so it covers every commit made before this call."""
        self.runs += 1
        return self._run_alone()

    async def _run_alone(self) -> tuple[int, int, int]:
        async with self._one:
            return await asyncio.to_thread(checkpoint_file, self.path, self.limit_bytes)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                await task
            except sqlite3.Error:
                pass  # the next start checkpoints again
