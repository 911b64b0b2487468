"""Database engines and migrations shared by the node and the hub.

SQLite (one file per server, WAL) is the embedded default; PostgreSQL (asyncpg) is the
production engine. Callers give a plain URL (`sqlite:///path.db`, `postgresql://...`) and
get an async engine with the right driver and pragmas. Schema changes go through Alembic:
each server package keeps its own `migrations/` folder, and `migrate` runs it to head on a
live connection so the same code path serves tests, the CLI and the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from federation.db_url import parse_db_url
from federation.migration_lock import lock_upgrade_transaction, migration_file_lock
from federation.sqlite_checkpoint import WAL_LIMIT_BYTES, Checkpointer
from federation.sqlite_inline import InlineConnection, inline_creator
from federation.sqlite_lock import BUSY_WAIT_S, begin_immediate

# Constraint names both servers use, so migrations name the same things on both engines.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver this project uses; an unsupported or
    unreadable URL raises `FederationError(db_url)` naming it without its password."""
    u = parse_db_url(url)
    if u.get_backend_name() == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    else:
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return parse_db_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable across process
    # crashes in WAL mode (only an OS crash can lose the last transactions).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")  # waits on the driver's thread, not the loop
    cur.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    cur.close()


def _inline_pragmas(dbapi_conn: Any, record: Any) -> None:
    # Inline connections run on the loop: no busy wait inside SQLite (federation.sqlite_lock
    # retries BEGIN IMMEDIATE asynchronously) and no checkpoint inside a COMMIT
    # (federation.sqlite_checkpoint runs them on a thread).
    _sqlite_pragmas(dbapi_conn, record)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


# PostgreSQL pool unless the caller sets one: as many connections as SQLAlchemy's default
# allows at most (5 + 10 overflow), all kept. Overflow connections are closed when returned,
# so a server under steady load opened and closed them all the time (a server process,
# asyncpg's type introspection and every statement prepared again each time; see
# `node.web.app.engine_options`).
PG_POOL = {"pool_size": 15, "max_overflow": 0}


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` with SQLite pragmas applied on every connection; on
    PostgreSQL the pool is `PG_POOL` unless `kwargs` set its size."""
    if not is_sqlite(url) and "pool_size" not in kwargs and "poolclass" not in kwargs:
        kwargs = {**PG_POOL, **kwargs}
    engine = create_async_engine(async_url(url), **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def inline_write_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """For a file SQLite `engine`, a second engine on the same file whose connections run
    inline on the loop (`federation.sqlite_inline`), for write transactions; None for
    anything else (PostgreSQL, in-memory or URI databases), which write on `engine`."""
    url = engine.url
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or url.query:
        return None
    inline = create_async_engine(async_url(url.render_as_string(hide_password=False)),
                                 async_creator=inline_creator(path), pool_size=2,
                                 max_overflow=8)
    event.listen(inline.sync_engine, "connect", _inline_pragmas)
    return inline


def _upgrade(conn: Connection, script_location: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, script_location: str, revision: str = "heads") -> None:
    """Run the Alembic scripts at `script_location` (e.g. "node:migrations") to `revision`,
    one process at a time over one database (`federation.migration_lock`): a second process
    waits, then finds the schema current. On a server's SQLite engine (`Database.engine`)
    the upgrade is a write transaction from its first statement (BEGIN IMMEDIATE), so a
    running server's commit cannot leave it a stale snapshot to write from."""
    sqlite = engine.dialect.name == "sqlite"
    bind = engine.execution_options(peernet_write=True) if sqlite else engine
    async with migration_file_lock(engine), bind.begin() as conn:
        await lock_upgrade_transaction(conn)
        await conn.run_sync(_upgrade, script_location, revision)


def run_env(target_metadata: Any) -> None:
    """Body of every package's Alembic `env.py`: migrate on the connection `migrate` passed."""
    from alembic import context

    conn = context.config.attributes.get("connection")
    if conn is None:
        raise RuntimeError("migrations run only through federation.database.migrate")
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite issues no BEGIN of its own: `_sqlite_begin` opens every transaction.
    raw = getattr(dbapi_conn, "_connection", None)
    if isinstance(raw, InlineConnection):
        raw.isolation_level = None  # the adapter's setter posts to aiosqlite's thread
    else:
        dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    opts = conn.get_execution_options()
    if opts.get("peernet_autocommit"):
        return
    if not opts.get("peernet_write"):
        conn.exec_driver_sql("BEGIN")
    elif not isinstance(conn.connection.driver_connection, InlineConnection):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # threaded: SQLite's busy wait is off-loop
    # inline writes: WriteTransaction issues BEGIN IMMEDIATE with an async retry


@dataclass
class Database:
    """A server's engines, a session factory, and the write discipline (node and hub).

    `write()` opens a write transaction. On SQLite its first statement is `BEGIN IMMEDIATE`:
    the write lock is held from the start, so reads inside it are part of it (a
    read-then-write is atomic against other processes too) and see the latest commit; an
    in-process lock queues concurrent writers in front of it. On PostgreSQL a normal
    transaction. SAVEPOINTs work inside it on both engines. `read()` opens a plain
    (snapshot) transaction.

    On a SQLite file, `write()` runs on `write_engine`, whose connections execute inline on
    the event loop (`federation.sqlite_inline`: no hand-off to a driver thread per
    statement) and never wait inside SQLite: the lock is taken by an async retry
    (`federation.sqlite_lock`, `busy_wait_s`, then `DatabaseBusy`, code `busy`) and
    checkpoints run on a thread (`checkpointer`, `federation.sqlite_checkpoint`). `engine`
    (aiosqlite, threaded) serves reads, which may scan for long. Elsewhere both are the same
    engine.
    """

    engine: AsyncEngine
    write_engine: AsyncEngine = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    is_sqlite: bool = field(init=False)
    serialise_writes: bool = field(init=False)  # SQLite: queue writers in memory
    checkpointer: Checkpointer | None = field(init=False, default=None)
    busy_wait_s: float = field(init=False, default=BUSY_WAIT_S)
    _write_lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    _write_bind: AsyncEngine = field(init=False)

    def __post_init__(self) -> None:
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.serialise_writes = self.is_sqlite
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        inline = inline_write_engine(self.engine) if self.is_sqlite else None
        self.write_engine = inline or self.engine
        if inline is not None and inline.url.database:
            self.checkpointer = Checkpointer(inline.url.database)
        # The option set once on a proxy of the engine: not one more call per transaction.
        self._write_bind = self.write_engine.execution_options(peernet_write=True)
        if self.is_sqlite:
            for engine in dict.fromkeys([self.engine, self.write_engine]):
                sync = engine.sync_engine
                if not event.contains(sync, "connect", _sqlite_no_implicit_begin):
                    event.listen(sync, "connect", _sqlite_no_implicit_begin)
                    event.listen(sync, "begin", _sqlite_begin)

    def write(self) -> WriteTransaction:
        return WriteTransaction(self)

    @contextlib.asynccontextmanager
    async def write_lock(self) -> AsyncIterator[None]:
        """The in-process writer queue alone (SQLite), for code that writes on a raw driver
        connection."""
        if not self.serialise_writes:
            yield
            return
        async with self._write_lock:
            yield

    def read(self) -> Any:
        return self.engine.begin()

    async def checkpoint(self) -> tuple[int, int, int] | None:
        """A checkpoint now, on a thread (SQLite file); SQLite's (busy, log, checkpointed)."""
        if self.checkpointer is None:
            return None
        return await self.checkpointer.run()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.close()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        await self.engine.dispose()


class WriteTransaction:
    """`async with db.write() as conn:` one write transaction, committed on success."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._locked = False

    async def __aenter__(self) -> AsyncConnection:
        db = self._db
        if db.serialise_writes:
            await db._write_lock.acquire()
            self._locked = True
        try:
            conn = await db._write_bind.connect()
        except BaseException:
            self._release()
            raise
        self._conn = conn
        try:
            await conn.begin()
            driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            if isinstance(driver, InlineConnection) and driver._connection is not None:
                await begin_immediate(driver._connection, db.busy_wait_s)
        except BaseException:
            await self._close(commit=False)
            raise
        return conn

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self._close(commit=exc_type is None)

    async def _close(self, *, commit: bool) -> None:
        try:
            if commit:
                await self._conn.commit()
            else:
                await self._conn.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._release()
        if commit and self._db.checkpointer is not None:
            self._db.checkpointer.after_commit()

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            self._db._write_lock.release()
