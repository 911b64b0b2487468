"""Accepted versions of a signed, versioned document in the database: what the roster store
(`federation.roster_sync.RosterStore`, table `fed_roster`) and the compact store
(`federation.compact_store.CompactStore`, table `fed_compact`) do alike.

Each accepted version is kept as the bytes it arrived as (served onwards unchanged), with
its SHA-256 and when it was accepted. Storing is a read-then-insert under the writers'
lock of the table (`federation.leader_lock.serialise_writers`): another process over the
same database may have stored the same version a moment before (skipped), or a different
document under the same version number (`split_view`, and nothing of the batch stored).
Writes go through the server's write discipline when it gives one, else through a
`Database` of the store's own, made at its first write (tools that only read never make
one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.database import Database
from federation.errors import FedCode, FederationError
from federation.leader_lock import serialise_writers

__all__ = ["OwnWrite", "Versioned", "WriteFn", "stored_document", "store_new_versions"]

WriteFn = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Versioned(Protocol):
    """A signed document with a version number (`SignedRoster`, `SignedCompact`)."""

    @property
    def version(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def to_bytes(self) -> bytes: ...


class OwnWrite:
    """A write transaction through a `Database` over `engine`, made at the first call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._db: Database | None = None

    def __call__(self) -> AbstractAsyncContextManager[AsyncConnection]:
        if self._db is None:
            self._db = Database(self.engine)
        return self._db.write()


async def store_new_versions(conn: AsyncConnection, table: Table, fresh: Sequence[Versioned],
                             now: int, *, lock: str, label: str) -> None:
    """Inside a write transaction: insert the versions of `fresh` that `table` does not
    hold yet; `split_view` if it holds one of them with other bytes. `label` names the
    document in that refusal ("roster", "compact")."""
    await serialise_writers(conn, lock)
    have = {
        r.version: r.sha256
        for r in (await conn.execute(
            select(table.c.version, table.c.sha256).where(
                table.c.version.in_([s.version for s in fresh])))).all()
    }
    rows = []
    for s in fresh:
        if s.version in have:
            if have[s.version] != s.sha256:  # another process took a different one
                raise FederationError(
                    FedCode.SPLIT_VIEW, f"{label} version {s.version} differs in the database")
            continue
        rows.append({"version": s.version, "sha256": s.sha256, "document": s.to_bytes(),
                     "accepted_ts": now})
    if rows:
        await conn.execute(insert(table), rows)


async def stored_document(engine: AsyncEngine, table: Table,
                          version: int | None = None) -> bytes | None:
    """The stored bytes of `version`, or of the newest version when None; None if absent."""
    async with engine.connect() as conn:
        q = select(table.c.document)
        if version is None:
            q = q.order_by(table.c.version.desc()).limit(1)
        else:
            q = q.where(table.c.version == version)
        row = (await conn.execute(q)).first()
    return bytes(row.document) if row else None
