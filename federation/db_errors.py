"""Database failures an operator can fix, as one sentence naming the database, and the
checks `init` and `serve` run before they touch anything.

Drivers report the same few operator mistakes in many shapes (`socket.gaierror` for an
unknown host, `ConnectionRefusedError`, asyncpg's `InvalidPasswordError` wrapped by
SQLAlchemy, sqlite3's "unable to open database file"); `db_error` maps them to a
`FederationError` with a stable `db_*` code and the URL without its password, so every
command says the same thing for the same mistake. Anything it does not recognise stays
a traceback: that is a bug to see, not to hide.

`probe_database` connects, proves the user may create a table (created and dropped again, so
a failed `init` leaves nothing behind) and reports which tables exist:
`init` refuses a database it cannot write before creating keys, and `serve` refuses one
that was never initialised instead of silently creating an empty schema.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from federation.db_url import parse_db_url, redact
from federation.errors import FedCode, FederationError

__all__ = ["DatabaseProbe", "db_error", "database_errors", "probe_database"]

# PostgreSQL SQLSTATEs (asyncpg exposes them as `sqlstate`).
_LOGIN = {"28P01", "28000"}  # invalid_password, invalid_authorization_specification
_MISSING = {"3D000"}  # invalid_catalog_name
_READ_ONLY = {"42501", "25006"}  # insufficient_privilege, read_only_sql_transaction


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 8:
        seen.append(cur)
        orig = getattr(cur, "orig", None)
        cur = orig if isinstance(orig, BaseException) else (cur.__cause__ or cur.__context__)
    return seen


def _sqlstate(chain: list[BaseException]) -> str:
    for e in chain:
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(state, str):
            return state
    return ""


def db_error(exc: BaseException, url: str) -> FederationError | None:
    """`exc` as one operator-facing line about the database at `url`; None when `exc` is
    not a database failure this module recognises."""
    if isinstance(exc, FederationError):
        return exc
    where = redact(url)
    chain = _chain(exc)
    state = _sqlstate(chain)
    text_all = " ".join(str(e) for e in chain).lower()
    try:
        u = parse_db_url(url)
    except FederationError as bad:
        return bad
    host = u.host or u.query.get("host") or "localhost"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return FederationError(FedCode.DB_UNREACHABLE,
                               f"database host {host!r} not found (database {where})")
    if state in _LOGIN or "password authentication failed" in text_all:
        return FederationError(FedCode.DB_LOGIN, f"the database refused the login of user "
                               f"{u.username!r}: check its password (database {where})")
    if state in _MISSING:
        return FederationError(FedCode.DB_MISSING, f"the database {u.database!r} does not "
                               f"exist: create it first (database {where})")
    if state in _READ_ONLY or "readonly database" in text_all or "read-only" in text_all:
        return FederationError(FedCode.DB_READ_ONLY, f"user {u.username!r} may not create or "
                               f"change tables in this database: grant it ownership "
                               f"(createdb -O) (database {where})")
    if u.get_backend_name() == "sqlite" and "unable to open database file" in text_all:
        return FederationError(FedCode.DB_UNREACHABLE, f"cannot open the SQLite file "
                               f"{u.database}: does its directory exist? (database {where})")
    if any(isinstance(e, (ConnectionError, TimeoutError)) for e in chain) or (
        any(isinstance(e, OSError) for e in chain) and not isinstance(exc, SQLAlchemyError)
    ):
        return FederationError(FedCode.DB_UNREACHABLE,
                               f"cannot connect to the database at {host} (database {where})")
    if isinstance(exc, DBAPIError):
        first = (str(exc.orig or exc).strip().splitlines() or ["error"])[0][:160]
        return FederationError(FedCode.DB_ERROR, f"the database failed: {first} "
                               f"(database {where})")
    return None


@asynccontextmanager
async def database_errors(url: str) -> AsyncIterator[None]:
    """Raise recognised database failures inside the block as `db_error` lines."""
    try:
        yield
    except Exception as exc:
        err = db_error(exc, url)
        if err is None or err is exc:
            raise
        raise err from None


@dataclass(frozen=True)
class DatabaseProbe:
    tables: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.tables


async def probe_database(url: str) -> DatabaseProbe:
    """Connect to `url`, check the user may create a table (then dropped) and list the
    tables; database failures raise `FederationError` (see `db_error`)."""
    from federation.database import make_engine

    async with database_errors(url):
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
                # Created and dropped (SQLite runs DDL outside the transaction).
                await conn.execute(text("CREATE TABLE peernet_write_probe (x INTEGER)"))
                await conn.execute(text("DROP TABLE peernet_write_probe"))
        finally:
            await engine.dispose()
    return DatabaseProbe(frozenset(tables))
