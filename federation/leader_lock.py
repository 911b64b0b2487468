"""One runner at a time for a background pass, across the server processes of one database.

Several `peernet node serve` (or `hub serve`) processes may share one PostgreSQL behind a
load balancer. Most of what they do is already safe side by side (requests are
transactions; the outbox claims rows `FOR UPDATE SKIP LOCKED`), but a background pass that
reads "what is not done yet" and then does it in a later transaction (queue the month's
release, sign the audit head, publish an anchor) would do it once per process: two
releases queued, two signatures, two anchors.

`leader(db, name)` is the guard: `async with leader(db, "release") as lead: if lead: ...`.
`serialise_writers(conn, name)` is its counterpart inside a write transaction: a
read-then-insert (is this roster version stored? store it) waits for another process doing
the same, instead of both reading "absent" (`federation.roster_sync`).

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`, key from the name) on a
  connection held for the block. Tried, never waited for: the process that does not get
  it skips this pass (the holder is doing the same work), and a process that dies loses
  its lock with its connection, so the next pass elsewhere takes over.
- SQLite: one process is the supported shape, but two started by mistake on one file must
  not both run the pass: an exclusive, non-blocking `flock` on `<database>.<name>.lock`
  beside the file (released by the OS if the process dies). In-memory databases have one
  process by construction.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["advisory_key", "leader", "lock_path", "serialise_writers"]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(b"peernet/v1/leader\0" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


async def serialise_writers(conn: AsyncConnection, name: str) -> None:
    """Inside a write transaction: wait until no other transaction holding `name` is open,
    so a read-then-insert (is this version stored? store it) is atomic across processes.
    PostgreSQL: a transaction advisory lock, released by the commit or rollback. SQLite:
    nothing to do, the transaction's BEGIN IMMEDIATE already holds the database's one write
    lock."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_XACT_LOCK, {"k": advisory_key(name)})


def lock_path(engine: AsyncEngine, name: str) -> str | None:
    """The lock file `<database>.<name>.lock` beside a SQLite file; None for PostgreSQL and
    in-memory databases (no file to lock)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    if not path or path == ":memory:":
        return None
    return f"{path}.{name}.lock"


@contextlib.asynccontextmanager
async def leader(engine: AsyncEngine, name: str) -> AsyncIterator[bool]:
    """Whether this process may run the pass `name` now (see the module notes); the lock is
    held until the block ends."""
    if engine.dialect.name == "postgresql":
        key = advisory_key(name)
        async with engine.connect() as conn:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                           {"k": key})).scalar())
            await conn.commit()  # no transaction stays open while the pass runs
            try:
                yield got
            finally:
                if got:
                    try:
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        await conn.commit()
                    except BaseException:
                        # Cancelled or failed: close the session (which ends its lock) rather
                        # than return a connection still holding it to the pool.
                        await conn.invalidate()
                        raise
        return
    path = lock_path(engine, name)
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
