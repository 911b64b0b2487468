from __future__ import annotations

import pytest
from sqlalchemy import text

from federation.database import async_url, is_sqlite, make_engine
from federation.errors import FederationError


async def test_engine_round_trip_on_both_databases(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'a')"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT v FROM t WHERE id = 1"))).scalar() == "a"
            if is_sqlite(db_url):
                mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
                assert mode == "wal"
    finally:
        await engine.dispose()


def test_async_url_maps_drivers_and_refuses_others() -> None:
    assert async_url("sqlite:///x.db").startswith("sqlite+aiosqlite:///")
    assert async_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")
    with pytest.raises(FederationError, match="unsupported") as err:  # one CLI line
        async_url("mysql://u:pw@h/db")
    assert err.value.code == "db_url" and "pw" not in err.value.message
