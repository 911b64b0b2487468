"""An aiosqlite-shaped SQLite connection whose calls run inline, on the event loop's thread.

SQLAlchemy's asyncio SQLite dialect drives an `aiosqlite.Connection`: every statement,
fetch, BEGIN and COMMIT is a hand-off to the connection's own thread and a wake-up of the
loop when it answers. For the short indexed statements of a write transaction that hand-off
costs several times the statement itself (measured: about 2.3 ms of CPU per 9-statement
transaction through the thread, 0.6 ms inline). `inline_creator` gives the dialect this
connection instead (`create_async_engine(..., async_creator=...)`): the same sqlite3
connection API, each coroutine completing without suspending.

Used only for `Database.write_engine` on SQLite (`federation.database`): write
transactions are short, serialised by the in-process writer queue, and in WAL mode never
wait on a reader. Reads, whose scans can be long (releases, statistics), stay on the
threaded engine so they never stall the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "inline_creator"]


class _Cursor:
    """The subset of `aiosqlite.Cursor` SQLAlchemy's adapter calls."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    # `connection.cursor()` is awaited, or entered as an async context manager.
    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._self().__await__()

    async def _self(self) -> _Cursor:
        return self

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> _Cursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The subset of `aiosqlite.Connection` SQLAlchemy's adapter calls, run inline."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # The adapter checks `_connection` before commit and rollback (None once closed).
        self._connection: sqlite3.Connection | None = conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(path: str) -> Callable[[], Awaitable[InlineConnection]]:
    """`async_creator` for `create_async_engine`: inline connections to the file `path`."""

    async def connect() -> InlineConnection:
        # The pool may close a connection from another thread (garbage collection).
        return InlineConnection(sqlite3.connect(path, check_same_thread=False))

    return connect
