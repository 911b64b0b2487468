"""Attacks by a malicious peer on what a server fetches or sends (issue 13, item 3).

Each peer is a real aiohttp server on an ephemeral port that answers as an attacker would:

- a roster claiming version 2^53-1: one walk of at most 64 versions per fetch, never a
  loop (before: one request per version up to 2^53, every document kept); when every answer
  is the claim itself, refused at the first link (`roster_version`), nothing stored;
- a server 70 versions behind catches up in two fetches of at most 64 versions each (before
  the step-wise walk: `roster_gap` for ever);
- a roster whose first missing link is bad: the walk ends at that link (`roster_threshold`)
  instead of fetching every version first;
- a roster answer over the size limit: `bad_roster`, nothing stored;
- a redirect (roster GET and the signed batch PUT): not followed, the second server sees no
  request (before: aiohttp followed it, the signed PUT included);
- a peer that never answers: a later fetch from an honest peer is not blocked by it
  (before: one fetch at a time, so the honest one was dropped while the stuck one waited).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.database import make_engine
from federation.errors import FedCode, FederationError
from federation.keystore import NodeKeys
from federation.roster import Roster, SignedRoster
from federation.roster_fetch import MAX_ROSTER_BYTES, MAX_ROSTER_GAP
from federation.roster_sync import RosterStore
from federation.service import PEER_ROSTER_FETCH_MS
from federation.store import METADATA
from federation.transport import HopClient, PeerError
from protocol.canonical import MAX_SAFE_INT
from protocol.encoding import sha256_b64u
from protocol.envelope import build_envelope
from protocol.ids import new_ulid
from protocol.messages import RosterRef
from tests.federation.boards import TestBoard
from tests.federation.helpers import TEST_BODY, TEST_TYPE, put_batch, sender_of
from tests.federation.network import Network, _bound_socket, network_factory

NOW = 1_780_000_000_000
DAY = 86_400_000
NetworkFactory = Callable[..., Awaitable[Network]]


@dataclass
class Peer:
    """A real server on an ephemeral port that records the paths it was asked for."""

    runner: web.AppRunner
    seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Answer], Awaitable[Peer]]]:
    started: list[Peer] = []

    async def start(answer: Answer) -> Peer:
        async def handler(request: web.Request) -> web.StreamResponse:
            p.seen.append(request.method + " " + request.path)
            return await answer(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        p = Peer(runner)
        started.append(p)
        return p

    yield start
    for p in started:
        await p.runner.cleanup()


@pytest.fixture
async def network(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[NetworkFactory]:
    async for factory in network_factory(tmp_path, request):
        yield factory


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[RosterStore]:
    """A server's roster store at version 1 of a 2-of-3 board."""
    engine: AsyncEngine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    board = TestBoard.make(3, 2)
    s = RosterStore(engine, FakeClock(NOW), board.pin())
    await s.accept([board.sign(board.roster(now=NOW))])
    s.board = board  # type: ignore[attr-defined]
    yield s
    await engine.dispose()


def _doc(body: bytes) -> Answer:
    async def answer(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    return answer


async def _refused(store: RosterStore, url: str, seconds: float = 5.0) -> FederationError:
    before = (store.state.version, await store.document())
    async with aiohttp.ClientSession() as http, asyncio.timeout(seconds):
        with pytest.raises(FederationError) as e:
            await store.fetch_from(http, url, source="peer-x")
    assert (store.state.version, await store.document()) == before  # nothing stored
    assert await store.count_alarms() == 0
    return e.value


def _claim_2_53(board: TestBoard, v1: SignedRoster) -> SignedRoster:
    value = board.next(v1, now=NOW).model_dump(mode="json")
    value["version"] = MAX_SAFE_INT
    return board.sign(Roster.model_validate(value))


def _chain_server(
    board: TestBoard, v1: SignedRoster, newest: SignedRoster | None, *, old_until: int = 0
) -> Answer:
    """A peer holding a genuine chain after `v1`, signed as asked (so any version exists),
    naming `newest` (or the genuine version 70) as its newest. Versions up to `old_until`
    expired long ago: links of a chain, not its newest."""
    chain = {1: v1}

    def link(v: int) -> SignedRoster:
        for n in range(len(chain) + 1, v + 1):
            now = NOW - 100 * DAY if n <= old_until else NOW
            chain[n] = board.sign(board.next(chain[n - 1], now=now))
        return chain[v]

    async def answer(request: web.Request) -> web.StreamResponse:
        tail = request.path.rsplit("/", 1)[-1]
        doc = link(int(tail)) if tail.isdigit() else (newest or link(70))
        return web.Response(body=doc.to_bytes(), content_type="application/json")

    return answer


async def test_a_roster_claiming_version_2_53_costs_one_bounded_walk(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    board: TestBoard = store.board  # type: ignore[attr-defined]
    v1 = store.state.require()
    claim = _claim_2_53(board, v1)
    # Every version the walk might ask for exists, genuinely signed: only the cap ends it.
    evil = await peer(_chain_server(board, v1, claim))
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http, asyncio.timeout(20):
        got = await store.fetch_from(http, evil.url, source="peer-x")
    elapsed = time.perf_counter() - t0
    assert len(evil.seen) == 1 + MAX_ROSTER_GAP  # the claim, then versions 2..65
    assert evil.seen[-1] == f"GET /fed/v1/roster/{1 + MAX_ROSTER_GAP}"
    assert [s.version for s in got] == list(range(2, 2 + MAX_ROSTER_GAP))
    assert store.state.version == 1 + MAX_ROSTER_GAP  # what verified, never the claim
    assert store.state.known_hash(MAX_SAFE_INT) is None
    assert await store.count_alarms() == 0
    record("security-roster-gap", area="security",
           case="a peer's roster claiming version 2^53-1",
           how="a real aiohttp peer serves a signed-looking roster claiming version "
               "2^53-1 and a genuine chain for every version the walk asks for",
           result=f"one walk of {MAX_ROSTER_GAP} versions ({len(evil.seen)} requests) in "
                  f"{elapsed:.2f} s, the genuine links stored, the claim not",
           figures={"requests": len(evil.seen), "max_gap": MAX_ROSTER_GAP},
           duration_s=elapsed)


async def test_a_claim_answered_for_every_version_is_refused_at_the_first_link(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    board: TestBoard = store.board  # type: ignore[attr-defined]
    claim = _claim_2_53(board, store.state.require())
    evil = await peer(_doc(claim.to_bytes()))
    err = await _refused(store, evil.url)
    assert err.code == FedCode.ROSTER_VERSION
    assert evil.seen == ["GET /fed/v1/roster", "GET /fed/v1/roster/2"]


async def test_a_server_70_versions_behind_catches_up_in_two_fetches(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    board: TestBoard = store.board  # type: ignore[attr-defined]
    v1 = store.state.require()
    # Versions 2..66 expired long ago: the first fetch's last link is one of them.
    honest = await peer(_chain_server(board, v1, None, old_until=66))
    async with aiohttp.ClientSession() as http, asyncio.timeout(20):
        first = await store.fetch_from(http, honest.url, source="peer-x")
        assert [s.version for s in first] == list(range(2, 2 + MAX_ROSTER_GAP))
        assert store.state.version == 1 + MAX_ROSTER_GAP
        honest.seen.clear()
        second = await store.fetch_from(http, honest.url, source="peer-x")
        assert [s.version for s in second] == list(range(2 + MAX_ROSTER_GAP, 71))
        assert honest.seen[1] == f"GET /fed/v1/roster/{2 + MAX_ROSTER_GAP}"
        assert await store.fetch_from(http, honest.url, source="peer-x") == []
    assert store.state.version == 70
    assert await store.document(70) is not None and await store.document(2) is not None
    assert await store.count_alarms() == 0


async def test_a_bad_link_ends_the_walk_at_once(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    board: TestBoard = store.board  # type: ignore[attr-defined]
    chain = [store.state.require()]
    for _ in range(9):
        chain.append(board.sign(board.next(chain[-1], now=NOW)))
    forged = {s.version: s for s in chain}
    forged[2] = board.sign(board.next(chain[0], now=NOW), board.keys[:1])  # one signature

    async def answer(request: web.Request) -> web.StreamResponse:
        tail = request.path.rsplit("/", 1)[-1]
        doc = forged[10] if not tail.isdigit() else forged[int(tail)]
        return web.Response(body=doc.to_bytes(), content_type="application/json")

    evil = await peer(answer)
    err = await _refused(store, evil.url)
    assert err.code == FedCode.ROSTER_THRESHOLD
    assert evil.seen == ["GET /fed/v1/roster", "GET /fed/v1/roster/2"]


async def test_an_oversized_roster_answer_is_refused(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    evil = await peer(_doc(b" " * (MAX_ROSTER_BYTES + 1)))
    assert (await _refused(store, evil.url)).code == FedCode.BAD_ROSTER


async def test_roster_redirect_is_not_followed(
    store: RosterStore, peer: Callable[[Answer], Awaitable[Peer]]
) -> None:
    board: TestBoard = store.board  # type: ignore[attr-defined]
    other = await peer(_doc(board.sign(board.next(store.state.require(), now=NOW)).to_bytes()))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(other.url + request.path)

    evil = await peer(redirect)
    assert (await _refused(store, evil.url)).code == FedCode.PEER_ERROR
    assert evil.seen == ["GET /fed/v1/roster"] and other.seen == []


async def test_signed_put_redirect_is_not_followed(
    peer: Callable[[Answer], Awaitable[Peer]],
) -> None:
    other = await peer(_doc(b'{"results":[]}'))

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(other.url + request.path)  # 307 keeps PUT and body

    evil = await peer(redirect)
    async with aiohttp.ClientSession() as http:
        client = HopClient("agency-1", NodeKeys.generate(), FakeClock(NOW), http, timeout_s=5)
        with pytest.raises(PeerError) as e:
            await client.send_batch(evil.url, "agency-2", [])
    assert e.value.peer_status == 307
    assert len(evil.seen) == 1 and evil.seen[0].startswith("PUT /fed/v1/send/")
    assert other.seen == []
    record("security-no-redirects", area="security",
           case="a peer answers a roster fetch or a signed batch PUT with a redirect",
           how="real aiohttp peers answer 302 (roster GET) and 307 (PUT) pointing at a "
               "second server that records every request",
           result="not followed (peer_error); the second server saw no request",
           figures={"second_server_requests": len(other.seen)})


async def test_a_hung_peer_does_not_block_a_later_fetch(network: NetworkFactory) -> None:
    net = await network(3)
    a, b, c = net.nodes
    v2 = net.board.sign(net.board.next(net.roster, now=net.clock.now_ms()))
    await a.fed.roster.accept([v2])
    # c's address now answers the roster routes by never answering.
    await c.stop()
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/fed/v1/roster", hang)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.SockSite(runner, _bound_socket(c.port)).start()
    try:
        def naming_v2(src: object) -> bytes:
            now = net.clock.now_ms()
            return build_envelope(
                sender=sender_of(src), to=b.node_id,  # type: ignore[arg-type]
                recipient_enc_key=b.keys.enc_public_bytes, msg_type=TEST_TYPE, body=TEST_BODY,
                msg_id=new_ulid(now, os.urandom(10)), created_ts=now,
                expires_ts=now + 3_600_000, roster=RosterRef(version=2, sha256=v2.sha256))

        status, _ = await put_batch(c, b.url, b.node_id, [naming_v2(c)])
        assert status == 200 and b.fed.peer_roster_fetches == 1  # from c: hangs
        await asyncio.sleep(0.2)
        assert b.fed.state.version == 1
        net.clock.advance(PEER_ROSTER_FETCH_MS)
        t0 = time.perf_counter()
        await put_batch(a, b.url, b.node_id, [naming_v2(a)])
        assert b.fed.peer_roster_fetches == 2  # from a, which has v2
        async with asyncio.timeout(3):
            while b.fed.state.version != 2:
                await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
    finally:
        release.set()
        await runner.cleanup()
    assert sha256_b64u(b.fed.state.require().roster_bytes) == v2.sha256
    record("security-roster-hung-peer", area="security",
           case="a peer that never answers a roster fetch",
           how="a real server on a roster member's address holds every roster request "
               "open; a later envelope from an honest peer names the same newer version",
           result=f"the later fetch replaced the stuck one; version 2 accepted in "
                  f"{elapsed:.2f} s",
           duration_s=elapsed)
