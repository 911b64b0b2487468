"""The hub's tables and its database handle.

Tables of the core (revision `0001_hub_core`): the relay queue (`hub.relay`) and the central
activation log (`hub.activation_log`), both on `Base.metadata`. The federation tables
(inbox, outbox, roster, alarms; `federation.store`) come in the `federation` branch.

Adding tables (other features, e.g. aggregates, stats, users): define them on `hub.db.Base`
in your own module, add its dotted name to `TABLE_MODULES` (Alembic's env.py imports them
all), and add a migration revision with `down_revision = "0001_hub_core"` and a unique
`branch_labels`.

`Database.write()` takes the write lock at the start of the transaction: `BEGIN IMMEDIATE`
on SQLite behind an in-process lock (concurrent requests queue instead of polling the busy
timeout), a plain transaction on PostgreSQL. SAVEPOINTs work on both (the inbox runs each
message handler in one).
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

__all__ = ["TABLE_MODULES", "Base", "Database", "import_table_modules"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Modules defining tables on Base.metadata (imported by migrations/env.py).
TABLE_MODULES: list[str] = ["hub.relay", "hub.activation_log", "hub.aggregates", "hub.users"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def _sqlite_no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("peernet_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    is_sqlite: bool = field(init=False)
    _write_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        if self.is_sqlite:
            sync = self.engine.sync_engine
            if not event.contains(sync, "connect", _sqlite_no_implicit_begin):
                event.listen(sync, "connect", _sqlite_no_implicit_begin)
                event.listen(sync, "begin", _sqlite_begin)

    def write(self) -> _WriteTx:
        return _WriteTx(self)

    def read(self) -> Any:
        return self.engine.begin()

    async def dispose(self) -> None:
        await self.engine.dispose()


class _WriteTx:
    """`async with db.write() as conn:` one write transaction, committed on success."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._locked = False

    async def __aenter__(self) -> AsyncConnection:
        if self._db.is_sqlite:
            await self._db._write_lock.acquire()
            self._locked = True
        try:
            conn = await self._db.engine.connect()
            conn = await conn.execution_options(peernet_write=True)
            self._conn = conn
            await conn.begin()
        except BaseException:
            self._release()
            raise
        return conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._release()

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            self._db._write_lock.release()
