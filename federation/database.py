"""Database engines and migrations shared by the node and the hub.

SQLite (one file per server, WAL) is the embedded default; PostgreSQL (asyncpg) is the
production engine. Callers give a plain URL (`sqlite:///path.db`, `postgresql://...`) and
get an async engine with the right driver and pragmas. Schema changes go through Alembic:
each server package keeps its own `migrations/` folder, and `migrate` runs it to head on a
live connection so the same code path serves tests, the CLI and the demo.
"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Map a plain database URL to the async driver this project uses."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        u = u.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database backend: {backend}")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable across process
    # crashes in WAL mode (only an OS crash can lose the last transactions).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` with SQLite pragmas applied on every connection."""
    engine = create_async_engine(async_url(url), **kwargs)
    if is_sqlite(url):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _upgrade(conn: Connection, script_location: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, script_location: str, revision: str = "heads") -> None:
    """Run the Alembic scripts at `script_location` (e.g. "node:migrations") to `revision`."""
    async with engine.begin() as conn:
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
