"""Roster storage, alarms and fetching on both databases, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.clock import FakeClock
from federation.database import make_engine, migrate
from federation.errors import FedCode, FederationError
from federation.roster_sync import RosterStore, roster_routes
from federation.store import METADATA, alarms, rosters
from tests.federation.boards import TestBoard

NOW = 1_780_000_000_000


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    async with eng.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield eng
    await eng.dispose()


async def _count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_accept_store_reload(engine: AsyncEngine) -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(3, 2)
    store = RosterStore(engine, clock, b.pin())
    v1 = b.sign(b.roster(now=NOW))
    v2 = b.sign(b.next(v1, now=NOW))
    assert [s.version for s in await store.accept([v1, v2])] == [1, 2]
    assert await store.document() == v2.to_bytes()
    again = RosterStore(engine, clock, b.pin())
    await again.load()
    assert again.state.version == 2 and again.state.known_hash(1) == v1.sha256


async def test_refused_roster_changes_nothing_and_split_view_is_persisted(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(3, 2)
    store = RosterStore(engine, clock, b.pin())
    await store.accept([b.sign(b.roster(now=NOW))])
    v1 = store.state.require()
    short = b.sign(b.next(v1, now=NOW), b.keys[:1])
    with pytest.raises(FederationError) as e:
        await store.accept([short])
    assert e.value.code == FedCode.ROSTER_THRESHOLD
    assert await _count(engine, rosters) == 1 and await _count(engine, alarms) == 0
    forked = b.sign(b.roster(now=NOW + 7))
    with pytest.raises(FederationError) as e:
        await store.accept([forked], source="peer-x")
    assert e.value.code == FedCode.SPLIT_VIEW
    listed = await store.list_alarms()
    assert listed[0]["kind"] == "split_view" and listed[0]["source"] == "peer-x"
    assert listed[0]["detail"]["seen_sha256"] == forked.sha256
    assert await _count(engine, rosters) == 1


async def test_fetch_chain_from_a_server(engine: AsyncEngine, tmp_path: object) -> None:
    clock = FakeClock(NOW)
    b = TestBoard.make(2, 2)
    # The serving side (a hub) has versions 1..3.
    serving_engine = engine
    server_store = RosterStore(serving_engine, clock, b.pin())
    v1 = b.sign(b.roster(now=NOW))
    v2 = b.sign(b.next(v1, now=NOW))
    v3 = b.sign(b.next(v2, now=NOW))
    await server_store.accept([v1, v2, v3])
    app = web.Application()
    app.add_routes(roster_routes(server_store))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    other_url = f"sqlite:///{tmp_path}/client.db"
    client_engine = make_engine(other_url)
    async with client_engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    try:
        client = RosterStore(client_engine, clock, b.pin())
        async with aiohttp.ClientSession() as http:
            got = await client.fetch_from(http, f"http://127.0.0.1:{port}", "hub-state")
            assert [s.version for s in got] == [1, 2, 3]
            assert await client.fetch_from(http, f"http://127.0.0.1:{port}") == []
            async with http.get(f"http://127.0.0.1:{port}/fed/v1/roster/9") as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "not_found"
            async with http.get(f"http://127.0.0.1:{port}/fed/v1/roster/x") as resp:
                assert resp.status == 400
        assert client.state.version == 3
    finally:
        await client_engine.dispose()
        await runner.cleanup()


async def test_node_migrations_carry_the_federation_tables(db_url: str) -> None:
    eng = make_engine(db_url)
    try:
        await migrate(eng, "node:migrations")
        for table in (rosters, alarms):
            assert await _count(eng, table) == 0
    finally:
        await eng.dispose()
