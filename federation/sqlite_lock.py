"""Taking SQLite's write lock without waiting on the event loop.

Every write transaction opens with one `BEGIN IMMEDIATE` (`federation.database`): the write
lock is taken before the transaction's first statement, so a read inside `db.write()` is
part of the transaction and a read-then-write is atomic against other processes (an audit
append cannot collide on its sequence number). In WAL mode that BEGIN is the only place a
write transaction can wait on another connection: commits append to the WAL under the lock
already held, and checkpoints run off the loop (`federation.sqlite_checkpoint`).

Inline connections (`federation.sqlite_inline`) run on the loop's thread, so SQLite's own
busy handler (a sleep inside the C call) would stall every request. They run with
`busy_timeout=0` instead; `begin_immediate` retries a busy BEGIN with an async sleep that
backs off from 1 ms to 50 ms, for at most `wait_s`, then raises `DatabaseBusy` (code
`busy`, HTTP 503): another process (a purge from cron, a checkpoint) held the lock too long.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from federation.errors import FedCode, FederationError

__all__ = ["BUSY_WAIT_S", "RETRY_AFTER_S", "DatabaseBusy", "begin_immediate", "is_busy",
           "write_error"]

BUSY_WAIT_S = 10.0  # as long as the busy timeout the threaded connections keep
RETRY_AFTER_S = 1  # the Retry-After (seconds) a server sends with a 503 `busy`
_FIRST_SLEEP_S = 0.001
_MAX_SLEEP_S = 0.05


class DatabaseBusy(FederationError):
    """Another connection held SQLite's write lock for longer than the bounded wait."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(FedCode.BUSY, f"the database is busy (another process held its "
                         f"write lock for {waited_s:.1f} s); try again")


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's SQLITE_BUSY / SQLITE_LOCKED answers (by code when the driver
    gives it, else by message)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def write_error(exc: sqlite3.Error, dialect: Dialect) -> Exception:
    """A sqlite3 error raised on a raw connection (the prepared shortcut, the encounter fast
    writer) as the rest of the write path raises it: `DatabaseBusy` for a lock held too
    long, else SQLAlchemy's wrapper (`IntegrityError`, ...), whatever path ran it."""
    if is_busy(exc):
        return DatabaseBusy(BUSY_WAIT_S)
    return DBAPIError.instance(None, None, exc, sqlite3.Error, dialect=dialect)


async def begin_immediate(conn: sqlite3.Connection, wait_s: float = BUSY_WAIT_S) -> None:
    """`BEGIN IMMEDIATE` on an inline (busy_timeout 0) connection, retried off the loop's
    back; `DatabaseBusy` after `wait_s`."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
    start = time.monotonic()
    sleep = _FIRST_SLEEP_S
    while True:
        waited = time.monotonic() - start
        if waited >= wait_s:
            raise DatabaseBusy(waited)
        await asyncio.sleep(min(sleep * (0.5 + random.random()),  # noqa: S311 - jitter
                                wait_s - waited))
        sleep = min(sleep * 2, _MAX_SLEEP_S)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
