"""Roster deltas over real HTTP on both databases (WIRE.md §13.1): a server holding version
N fetches N+1 as a delta and stores exactly what a server fetching the whole document
stores; a delta edited in transit is refused (`bad_signatures`) with nothing stored; a delta
for another base falls back to the whole document; the walk over several versions uses
deltas for the links; a bad `have` is `bad_input`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.database import make_engine
from federation.errors import FedCode, FederationError
from federation.keystore import NodeKeys
from federation.roster import SignedRoster, parse_signed_roster
from federation.roster_delta import DELTA_KEY, make_delta
from federation.roster_sync import RosterStore, roster_routes
from federation.store import METADATA, rosters
from peernet.throwaway_pg import create_database
from protocol.canonical import canonical_bytes, parse_json
from tests.federation.boards import TestBoard, node_entry

NOW = 1_780_000_000_000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _engine(url: str) -> AsyncEngine:
    eng = make_engine(url)
    async with eng.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    return eng


@pytest.fixture
async def engines(
    db_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two fresh databases of the `db_url` kind (two fetching servers)."""
    if db_url.startswith("sqlite"):
        second = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        second = await create_database(
            request.getfixturevalue("pg_admin_url"), "t_" + uuid.uuid4().hex[:16])
    a, b = await _engine(db_url), await _engine(second)
    yield a, b
    await a.dispose()
    await b.dispose()


def _versions(board: TestBoard, count: int) -> list[SignedRoster]:
    """Version 1 with 40 agencies; each later version replaces, adds and removes a node
    and (version 3) changes the policy."""
    nodes = [node_entry(f"agency-{i:03d}", NodeKeys.generate()) for i in range(0, 80, 2)]
    out = [board.sign(board.roster(now=NOW, nodes=nodes))]
    for v in range(2, count + 1):
        prev = out[-1]
        listed = [n.model_dump(mode="json") for n in prev.roster.nodes]
        listed[3] = node_entry(listed[3]["node_id"], NodeKeys.generate()).model_dump(mode="json")
        listed.append(node_entry(f"agency-{v * 2 + 1:03d}", NodeKeys.generate())
                      .model_dump(mode="json"))
        del listed[-3]
        listed.sort(key=lambda n: n["node_id"])
        changes: dict[str, Any] = {"nodes": listed}
        if v == 3:
            policy = prev.roster.policy.model_dump(mode="json")
            policy["retention_max_days"] = 400
            changes["policy"] = policy
        out.append(board.sign(board.next(prev, now=NOW + v, **changes)))
    return out


async def _serve(store: RosterStore, seen: list[tuple[str, bytes]],
                 rewrite: Callable[[bytes], bytes] | None = None) -> web.AppRunner:
    """The real roster routes on a loopback port; every answer recorded (and, for an
    attacker in the middle, rewritten)."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        if isinstance(resp, web.Response) and resp.body is not None and resp.status == 200:
            body = bytes(resp.body)  # type: ignore[arg-type]
            if rewrite is not None and body.startswith(b'{"' + DELTA_KEY.encode()):
                body = rewrite(body)
                resp = web.Response(body=body, content_type="application/json")
            seen.append((request.path_qs, body))
        return resp

    app = web.Application(middlewares=[record])
    app.add_routes(roster_routes(store))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _url(runner: web.AppRunner) -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


async def _stored(engine: AsyncEngine) -> list[tuple[int, str, bytes]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(rosters.c.version, rosters.c.sha256,
                                          rosters.c.document).order_by(rosters.c.version)))
        return [(r.version, r.sha256, bytes(r.document)) for r in rows]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[RosterStore, TestBoard, list[SignedRoster]]]:
    """The serving side (its own SQLite database) holding versions 1..4."""
    board = TestBoard.make(3, 2)
    eng = await _engine(f"sqlite:///{tmp_path / 'hub.db'}")
    store = RosterStore(eng, FakeClock(NOW), board.pin())
    versions = _versions(board, 4)
    await store.accept(versions)
    yield store, board, versions
    await eng.dispose()


async def test_delta_fetch_stores_what_a_whole_fetch_stores(
    engines: tuple[AsyncEngine, AsyncEngine],
    hub: tuple[RosterStore, TestBoard, list[SignedRoster]],
) -> None:
    store, board, versions = hub
    by_delta, whole = (RosterStore(e, FakeClock(NOW), board.pin()) for e in engines)
    await by_delta.accept(versions[:1])
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen)
    try:
        async with aiohttp.ClientSession() as http:
            got = await by_delta.fetch_from(http, _url(runner), "hub")
            assert [s.version for s in got] == [2, 3, 4]
            delta_walk = list(seen)
            docs = []  # the other server asks without `have`: whole documents
            for v in (1, 2, 3, 4):
                async with http.get(f"{_url(runner)}/fed/v1/roster/{v}") as resp:
                    docs.append(parse_signed_roster(await resp.read()))
            await whole.accept(docs, "hub")
    finally:
        await runner.cleanup()
    seen = delta_walk
    # Version 4 (the newest, three ahead) came whole; 2 and 3 as deltas from 1 and 2.
    deltas = [path for path, body in seen if is_delta_body(body)]
    assert len(deltas) == 2 and all("have=" in p for p in deltas)
    for _path, body in seen:
        if is_delta_body(body):
            assert len(body) < len(versions[1].to_bytes()) / 4
    assert await _stored(engines[0]) == await _stored(engines[1])
    assert [r[2] for r in await _stored(engines[0])] == [v.to_bytes() for v in versions]
    assert by_delta.state.version == whole.state.version == 4


def is_delta_body(body: bytes) -> bool:
    return body.startswith(b'{"' + DELTA_KEY.encode())


async def test_one_version_behind_fetches_one_delta(
    db_url: str, hub: tuple[RosterStore, TestBoard, list[SignedRoster]]
) -> None:
    store, board, versions = hub
    eng = await _engine(db_url)
    node = RosterStore(eng, FakeClock(NOW), board.pin())
    await node.accept(versions[:3])
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen)
    try:
        async with aiohttp.ClientSession() as http:
            assert [s.version for s in await node.fetch_from(http, _url(runner))] == [4]
        assert len(seen) == 1 and is_delta_body(seen[0][1])
        assert (await _stored(eng))[-1][2] == versions[3].to_bytes()
    finally:
        await runner.cleanup()
        await eng.dispose()


def _tamper(body: bytes) -> bytes:
    """An attacker in the middle points a listed node at its own server."""
    doc = parse_json(body)
    doc[DELTA_KEY]["replace"][0]["endpoint"] = "https://attacker.example.org"
    return canonical_bytes(doc)


async def test_an_up_to_date_poll_is_answered_not_modified(
    db_url: str, hub: tuple[RosterStore, TestBoard, list[SignedRoster]]
) -> None:
    store, board, versions = hub
    eng = await _engine(db_url)
    node = RosterStore(eng, FakeClock(NOW), board.pin())
    await node.accept(versions)
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen)
    try:
        async with aiohttp.ClientSession() as http:
            assert await node.fetch_from(http, _url(runner), "hub") == []
        assert seen == []  # one request, answered 304 without a body (not recorded)
        assert len(await _stored(eng)) == 4 and node.state.version == 4
    finally:
        await runner.cleanup()
        await eng.dispose()


async def test_tampered_delta_is_refused_and_nothing_is_stored(
    db_url: str, hub: tuple[RosterStore, TestBoard, list[SignedRoster]]
) -> None:
    store, board, versions = hub
    eng = await _engine(db_url)
    node = RosterStore(eng, FakeClock(NOW), board.pin())
    await node.accept(versions[:3])
    before = await _stored(eng)
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen, rewrite=_tamper)
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(FederationError) as e:
                await node.fetch_from(http, _url(runner), "hub")
        assert e.value.code == FedCode.BAD_SIGNATURES
        assert await _stored(eng) == before and node.state.version == 3
        if db_url.startswith("postgresql"):
            record("security-roster-delta-tampered", area="security",
                   case="a roster delta altered in transit",
                   how="a real aiohttp server answers a node holding version 3 with the "
                       "delta to version 4, one listed node's endpoint pointed elsewhere",
                   result="refused as bad_signatures (the rebuilt document fails the "
                          "board's signatures); nothing stored, on SQLite and PostgreSQL",
                   figures={"requests": len(seen)})
    finally:
        await runner.cleanup()
        await eng.dispose()


async def test_delta_for_another_base_falls_back_to_the_whole_document(
    db_url: str, hub: tuple[RosterStore, TestBoard, list[SignedRoster]]
) -> None:
    store, board, versions = hub
    other = board.sign(board.next(versions[2], now=NOW + 99))  # another version 4
    wrong = make_delta(other, board.sign(board.next(other, now=NOW + 100)))
    assert wrong is not None

    eng = await _engine(db_url)
    node = RosterStore(eng, FakeClock(NOW), board.pin())
    await node.accept(versions[:3])
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen, rewrite=lambda _body: wrong)
    try:
        async with aiohttp.ClientSession() as http:
            assert [s.version for s in await node.fetch_from(http, _url(runner))] == [4]
        assert [is_delta_body(b) for _, b in seen] == [True, False]  # then the whole one
        assert "have=" not in seen[1][0]
        assert (await _stored(eng))[-1][2] == versions[3].to_bytes()
    finally:
        await runner.cleanup()
        await eng.dispose()


async def test_the_server_answers_whole_unless_it_holds_the_named_base(
    hub: tuple[RosterStore, TestBoard, list[SignedRoster]],
) -> None:
    store, _board, versions = hub
    seen: list[tuple[str, bytes]] = []
    runner = await _serve(store, seen)
    v3 = versions[2]
    try:
        async with aiohttp.ClientSession() as http:
            base = f"{_url(runner)}/fed/v1/roster"

            async def get(path: str) -> tuple[int, bytes]:
                async with http.get(base + path) as resp:
                    return resp.status, await resp.read()

            status, body = await get(f"?have=3&have_sha256={v3.sha256}")
            assert status == 200 and is_delta_body(body)
            assert (await get(f"/4?have=3&have_sha256={v3.sha256}"))[1] == body
            # Another hash for 3 (a split view), or a base two behind: the whole document.
            assert (await get(f"?have=3&have_sha256={versions[0].sha256}"))[1] == \
                versions[3].to_bytes()
            assert (await get(f"?have=2&have_sha256={versions[1].sha256}"))[1] == \
                versions[3].to_bytes()
            # Holding the newest: 304 Not Modified, no body; with another hash: the document.
            v4 = versions[3]
            assert await get(f"?have=4&have_sha256={v4.sha256}") == (304, b"")
            assert await get(f"?have=4&have_sha256={v3.sha256}") == (200, v4.to_bytes())
            for query, field in (("?have=x&have_sha256=" + v3.sha256, "have"),
                                 ("?have=3", "have_sha256"),
                                 ("/4?have=3&have_sha256=short", "have_sha256")):
                status, body = await get(query)
                err = parse_json(body)["error"]
                assert status == 400 and err["code"] == "bad_input" and err["field"] == field
    finally:
        await runner.cleanup()
