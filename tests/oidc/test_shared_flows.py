"""OpenID Connect sign-in flows kept in the database (`federation.webkit.oidc_flows`): two
node apps over one database (one key file, one public address, as two processes behind a
load balancer) finish each other's flows; a replayed callback is refused on both; an
expired flow is refused and swept; a flood of starts keeps the table at its cap (oldest
dropped); the stored row holds no flow id and no plaintext secret. Both engines. The
in-test provider (`tests.oidc.fake_provider`) runs the real code flow with PKCE."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from federation.webkit.login import OIDC_FLOW
from federation.webkit.oidc import OidcFlow
from federation.webkit.oidc_flows import FLOW_TTL_S, PendingFlows, flow_seal_root
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.web.app import create_app
from protocol.encoding import sha256_b64u
from tests.oidc.conftest import RULES, code_of, now_ms, session_for
from tests.oidc.fake_provider import FakeProvider
from tests.oidc.real_provider import CLIENT_SECRET, free_port

FLOW_COOKIE = "peernet_pre_oidc"


@dataclass
class Twin:
    """One of two node apps over the same database."""

    client: TestClient[Any, Any]
    base: str

    @property
    def flow(self) -> OidcFlow:
        return cast(OidcFlow, self.client.app[OIDC_FLOW])

    async def rows(self, sql: str) -> list[Any]:
        async with NodeContext.of(self.client.app).db.read() as conn:
            return list((await conn.execute(text(sql))).all())

    async def state(self) -> dict[str, Any]:
        return {"users": await self.rows("SELECT username, role FROM users ORDER BY 1"),
                "sessions": await self.rows("SELECT id FROM web_sessions ORDER BY id")}


@pytest.fixture
async def twins(tmp_path: Path, db_url: str, fake: FakeProvider
                ) -> AsyncIterator[tuple[Twin, Twin, FakeClock]]:
    keys, pseudonyms = NodeKeys.generate(), Pseudonymizer(b"o" * 32)  # one key file
    clock = FakeClock(now_ms())
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # the one address both stand behind
    made: list[Twin] = []
    for i, port in enumerate(ports):
        d = tmp_path / f"node{i}"
        d.mkdir()
        settings = NodeSettings.load(
            None, node_id="oidc-fire", name="OIDC Fire Dept", data_dir=d, db_url=db_url,
            public_url=public, oidc={"issuer": fake.issuer, "client_id": "peernet-node",
                                     "rules": RULES},
            oidc_client_secret=CLIENT_SECRET)
        app = create_app(settings, clock=clock, keys=keys, pseudonyms=pseudonyms,
                         hasher=PasswordHasher(MIN))
        client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()  # one after the other: the first migrates
        made.append(Twin(client, f"http://127.0.0.1:{port}"))
    yield made[0], made[1], clock
    for t in made:
        await t.client.close()


async def start_flow(s: aiohttp.ClientSession, at: Twin) -> str:
    """Start a sign-in on `at` and pass the provider; the callback URL, not yet visited."""
    r = await s.get(at.base + "/login/oidc", allow_redirects=False)
    assert r.status == 303, await r.text()
    r = await s.get(r.headers["Location"], allow_redirects=False)  # the provider
    assert r.status == 303
    return str(r.headers["Location"])


def on(callback: str, twin: Twin) -> str:
    """The same callback URL delivered to `twin` (the balancer's choice)."""
    parts = urlsplit(callback)
    return twin.base + parts.path + "?" + parts.query


def flow_id(s: aiohttp.ClientSession) -> str:
    return next(c.value for c in s.cookie_jar if c.key == FLOW_COOKIE)


async def test_a_flow_started_on_one_process_finishes_on_the_other(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, _clock = twins
    async with session_for(a.base) as s:
        callback = await start_flow(s, a)
        r = await s.get(on(callback, b), allow_redirects=False)
        assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
        # The session is the database's: it works on both.
        for twin in (a, b):
            me = await s.get(twin.base + "/api/v1/me", allow_redirects=False)
            assert me.status == 200, twin.base
    # And the other way round, for a second browser.
    async with session_for(a.base) as s:
        callback = await start_flow(s, b)
        r = await s.get(on(callback, a), allow_redirects=False)
        assert r.status == 200
    assert len((await a.state())["sessions"]) == 2
    assert await a.rows("SELECT id FROM oidc_pending_flows") == []  # used up
    record("multi-worker-oidc-flow", area="multi-worker",
           case="an OpenID Connect sign-in started on one node process and finished on "
                "another (behind one address, one database)",
           how="two node apps over one database (SQLite and PostgreSQL), same key file and "
               "public URL; the provider's callback delivered to the process that did not "
               "start the flow, both ways",
           result="signed in; the session works on both processes; no pending flow left "
                  "(before: refused oidc_state, the flow was in the other's memory)")


async def test_a_replayed_callback_is_refused_on_both_processes(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, _clock = twins
    async with session_for(a.base) as s:
        callback = await start_flow(s, a)
        assert (await s.get(on(callback, a), allow_redirects=False)).status == 200
        before = await a.state()
        for twin in (a, b):
            r = await s.get(on(callback, twin), allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (400, "oidc_state"), twin.base
        assert await a.state() == before


async def test_the_same_flow_taken_twice_at_once_signs_in_once(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, clock = twins
    async with session_for(a.base) as s:
        await start_flow(s, a)
        fid = flow_id(s)
    now = clock.now_ms() // 1000
    got = await asyncio.gather(a.flow.flows.take(fid, now), b.flow.flows.take(fid, now))
    assert sum(p is not None for p in got) == 1


async def test_an_expired_flow_is_refused_and_swept(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, clock = twins
    async with session_for(a.base) as s:
        callback = await start_flow(s, a)
        clock.advance((FLOW_TTL_S + 1) * 1000)
        before = await a.state()
        r = await s.get(on(callback, b), allow_redirects=False)
        assert (r.status, code_of(await r.text())) == (400, "oidc_state")
        assert await a.state() == before
        assert len(await a.rows("SELECT id FROM oidc_pending_flows")) == 1  # not yet swept
    async with session_for(a.base) as s:
        await start_flow(s, b)  # a start sweeps what expired: only the new flow is left
        assert [r.id for r in await a.rows("SELECT id FROM oidc_pending_flows")] == [
            sha256_b64u(flow_id(s).encode())]


async def test_a_flood_of_starts_keeps_the_table_at_its_cap(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, clock = twins
    cap = 5
    a.flow.flows.cap = b.flow.flows.cap = cap
    callbacks: list[tuple[aiohttp.ClientSession, str]] = []
    try:
        for i in range(3 * cap):
            s = session_for(a.base)
            callbacks.append((s, await start_flow(s, (a, b)[i % 2])))
            clock.advance(1000)
            count = len(await a.rows("SELECT id FROM oidc_pending_flows"))
            assert count == min(i + 1, cap)
        before = await a.state()
        oldest_s, oldest = callbacks[0]
        r = await oldest_s.get(on(oldest, b), allow_redirects=False)
        assert (r.status, code_of(await r.text())) == (400, "oidc_state")  # dropped
        assert await a.state() == before
        newest_s, newest = callbacks[-1]
        r = await newest_s.get(on(newest, a), allow_redirects=False)
        assert r.status == 200  # the person who starts is served
    finally:
        for s, _ in callbacks:
            await s.close()
    record("security-oidc-flow-flood", area="security",
           case="a flood of OpenID Connect sign-in starts against two node processes",
           how="15 starts alternating between two node apps over one database with the "
               "pending-flow cap at 5 (production: 10,000), SQLite and PostgreSQL",
           result="the table never holds more than the cap; the oldest flows are dropped "
                  "(their callback refused oidc_state, nothing stored); the newest signs in",
           figures={"starts": 3 * cap, "cap": cap})


async def test_the_stored_flow_holds_no_flow_id_and_no_plaintext_secret(
        twins: tuple[Twin, Twin, FakeClock], fake: FakeProvider) -> None:
    a, b, clock = twins
    async with session_for(a.base) as s:
        r = await s.get(a.base + "/login/oidc", allow_redirects=False)
        query = parse_qs(urlsplit(r.headers["Location"]).query)
        fid = flow_id(s)
    rows = await a.rows("SELECT id, sealed, created FROM oidc_pending_flows")
    assert len(rows) == 1
    stored_id, sealed = rows[0].id, bytes(rows[0].sealed)
    assert stored_id == sha256_b64u(fid.encode())
    assert fid not in stored_id and fid.encode() not in sealed
    # Another server key (a database reader with a key of their own) opens nothing.
    stranger = PendingFlows(a.flow.flows.db, a.flow.flows.table,
                            flow_seal_root(b"x" * 32))
    now = clock.now_ms() // 1000
    assert await stranger.take(fid, now) is None
    assert await a.rows("SELECT id FROM oidc_pending_flows") == []  # a take is single use
    # A fresh flow, opened by the server: none of its secrets is in the stored bytes.
    async with session_for(a.base) as s:
        r = await s.get(a.base + "/login/oidc", allow_redirects=False)
        query = parse_qs(urlsplit(r.headers["Location"]).query)
        fid = flow_id(s)
    sealed = bytes((await a.rows("SELECT sealed FROM oidc_pending_flows"))[0].sealed)
    pending = await b.flow.flows.take(fid, now)
    assert pending is not None and pending.state == query["state"][0]
    assert pending.nonce == query["nonce"][0]
    for secret in (pending.verifier, pending.nonce, pending.state, pending.redirect_uri):
        assert secret.encode() not in sealed
    challenge = base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest())
    assert challenge.rstrip(b"=").decode() == query["code_challenge"][0]


async def test_a_callback_without_a_flow_or_with_a_forged_cookie_is_refused(
        twins: tuple[Twin, Twin, FakeClock]) -> None:
    a, b, _clock = twins
    async with session_for(a.base) as s:
        callback = await start_flow(s, a)
        before = await a.state()
        pending = await a.rows("SELECT id, sealed, created FROM oidc_pending_flows")
        s.cookie_jar.clear()
        s.cookie_jar.update_cookies({FLOW_COOKIE: "x" * 43},
                                    response_url=aiohttp.client.URL(a.base + "/login/oidc"))
        r = await s.get(on(callback, b), allow_redirects=False)
        assert (r.status, code_of(await r.text())) == (400, "oidc_state")
    async with session_for(a.base) as s:  # no cookie at all
        r = await s.get(on(callback, b), allow_redirects=False)
        assert (r.status, code_of(await r.text())) == (400, "oidc_state")
    assert await a.state() == before
    assert await a.rows("SELECT id, sealed, created FROM oidc_pending_flows") == pending
