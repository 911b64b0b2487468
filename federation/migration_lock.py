"""One schema upgrade at a time over one database, whichever process starts it.

Every server process migrates its database at start-up (`federation.database.migrate`). Two
started together on one fresh database (two `peernet node serve` behind a load balancer, a
CLI command run while the server starts) would both read an empty `alembic_version` and both
create the tables: the second fails with a duplicate table, or a unique violation on
PostgreSQL's catalog. So the upgrade runs under a lock the second process waits for; when it
gets the lock, Alembic reads `alembic_version` afresh and finds nothing left to do.

- PostgreSQL: `pg_advisory_xact_lock` taken as the first statement of the upgrade's
  transaction (DDL is transactional there), released by its commit or rollback, and by the
  server if the process dies. Alembic reads `alembic_version` after it, and each statement
  of a READ COMMITTED transaction sees the other process's committed upgrade.
- SQLite (a file): an exclusive `flock` on `<database>.migrate.lock`, the lock family of
  `federation.leader_lock` (released by the OS if the process dies), held around the whole
  upgrade transaction, which on a server's engine is itself a write transaction from its
  first statement (BEGIN IMMEDIATE: a deferred one that read the old schema could not write
  after another process's commit). The file lock is polled with an async backoff, so a
  waiting server never blocks its event loop and a cancelled wait leaves nothing held.
  In-memory databases have one process by construction.

Neither wait is bounded: a long upgrade (a big table rewritten) is worth waiting for, and the
waiter logs once that it is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.leader_lock import advisory_key, lock_path

__all__ = ["MIGRATION_LOCK", "lock_upgrade_transaction", "migration_file_lock"]

log = logging.getLogger("peernet.federation.migrate")

MIGRATION_LOCK = "migrate"  # one lock for every package's migrations over one database
_FIRST_SLEEP_S = 0.005
_MAX_SLEEP_S = 0.1


async def lock_upgrade_transaction(conn: AsyncConnection) -> None:
    """PostgreSQL: wait for the migration lock, held until `conn`'s transaction ends."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                           {"k": advisory_key(MIGRATION_LOCK)})


@contextlib.asynccontextmanager
async def migration_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """SQLite file: hold `<database>.migrate.lock` for the block (waited for off the loop's
    back); anything else: nothing to hold here."""
    path = lock_path(engine, MIGRATION_LOCK)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        sleep, told = _FIRST_SLEEP_S, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    log.info("waiting for another process's schema upgrade")
                    told = True
                await asyncio.sleep(sleep)
                sleep = min(sleep * 2, _MAX_SLEEP_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
