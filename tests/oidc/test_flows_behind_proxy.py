"""Sign-in flows across processes, end to end: two node apps behind a round-robin proxy
(`tests.chaos.proxy`, a new connection per request) sign people in through the real
provider (panva/oidc-provider) even though the start and the callback land on different
apps; two hub apps over one database finish each other's flows and refuse a replay on
both. Both engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import text

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.config import HubSettings
from hub.users import accounts as hub_users
from node.core.config import NodeSettings
from node.core.pseudonym import Pseudonymizer
from node.web.app import create_app
from tests.chaos.proxy import RoundRobinProxy
from tests.oidc.conftest import HUB_RULES, RULES, USERS, code_of, now_ms, sign_in
from tests.oidc.fake_provider import FakeProvider
from tests.oidc.real_provider import CLIENT_SECRET, client, free_port, real_provider


async def test_two_node_processes_behind_one_address_sign_people_in(
        tmp_path: Path, db_url: str) -> None:
    proxy = RoundRobinProxy([free_port(), free_port()])
    await proxy.start()
    keys, pseudonyms = NodeKeys.generate(), Pseudonymizer(b"o" * 32)
    made: list[TestClient[Any, Any]] = []
    try:
        async with real_provider(tmp_path, [client("peernet-node", proxy.url)], USERS) as op:
            for i, port in enumerate(proxy.backends):
                d = tmp_path / f"node{i}"
                d.mkdir()
                settings = NodeSettings.load(
                    None, node_id="oidc-fire", name="OIDC Fire Dept", data_dir=d,
                    db_url=db_url, public_url=proxy.url,
                    oidc={"issuer": op.issuer, "client_id": "peernet-node", "rules": RULES},
                    oidc_client_secret=CLIENT_SECRET)
                app = create_app(settings, clock=FakeClock(now_ms()), keys=keys,
                                 pseudonyms=pseudonyms, hasher=PasswordHasher(MIN))
                c = TestClient(TestServer(app, host="127.0.0.1", port=port))
                await c.start_server()
                made.append(c)
            for login in ("alice", "cora", "alice"):
                # A new connection per request: start and callback alternate between apps.
                async with aiohttp.ClientSession(
                        cookie_jar=aiohttp.CookieJar(unsafe=True),
                        connector=aiohttp.TCPConnector(force_close=True)) as s:
                    status, page = await sign_in(s, proxy.url, login)
                    assert (status, code_of(page)) == (200, None), login
                    for _ in range(2):  # the session is good on both
                        me = await s.get(proxy.url + "/api/v1/me", allow_redirects=False)
                        assert me.status == 200
        assert min(proxy.connections[p] for p in proxy.backends) >= 6
    finally:
        for c in made:
            await c.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    provider = FakeProvider(groups=["board-analysts"])
    await provider.start()
    yield provider
    await provider.close()


async def test_two_hub_processes_finish_each_others_flows(
        tmp_path: Path, db_url: str, fake: FakeProvider,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_users, "PASSWORD_COST", MIN)
    keys = NodeKeys.generate()
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    made: list[TestClient[Any, Any]] = []
    try:
        for i, port in enumerate(ports):
            d = tmp_path / f"hub{i}"
            d.mkdir()
            settings = HubSettings(
                hub_id="oidc-hub", name="OIDC Hub", data_dir=d, db_url=db_url,
                public_url=bases[0], operator_token=SecretStr("oidc-operator-token-" + "x" * 20),
                oidc={"issuer": fake.issuer, "client_id": "peernet-hub", "rules": HUB_RULES},
                oidc_client_secret=SecretStr(CLIENT_SECRET))
            app = create_hub_app(settings, clock=FakeClock(now_ms()), keys=keys)
            c = TestClient(TestServer(app, host="127.0.0.1", port=port))
            await c.start_server()
            made.append(c)

        async def sessions() -> list[Any]:
            async with made[0].app[HUB_DB].read() as conn:
                return list((await conn.execute(text("SELECT id FROM hub_sessions"))).all())

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            r = await s.get(bases[0] + "/login/oidc", allow_redirects=False)
            r = await s.get(r.headers["Location"], allow_redirects=False)  # the provider
            parts = urlsplit(r.headers["Location"])
            callback = parts.path + "?" + parts.query
            r = await s.get(bases[1] + callback, allow_redirects=False)  # the other hub
            assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
            for base in bases:
                dash = await s.get(base + "/dashboard", allow_redirects=False)
                assert dash.status == 200
            before = await sessions()
            for base in bases:  # replayed: used up, on both
                r = await s.get(base + callback, allow_redirects=False)
                assert (r.status, code_of(await r.text())) == (400, "oidc_state")
            assert await sessions() == before and len(before) == 1
    finally:
        for c in made:
            await c.close()
