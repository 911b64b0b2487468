"""Fixtures for the OpenID Connect sign-in tests: a node with `[oidc]` configured on a port
chosen before it starts (the provider must know its redirect URI), and a sign-in driven over
plain HTTP through the provider's login form (the browser tests drive Chromium instead)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from node.accounts.users import create_user
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import UserIn
from node.core.vocabulary import Role
from node.web.app import create_app
from tests.oidc.fake_provider import FakeProvider
from tests.oidc.real_provider import CLIENT_SECRET, PASSWORD, free_port

RULES = [
    {"group": "peernet-admins", "role": "admin"},
    {"group": "peernet-coordinators", "role": "coordinator", "team": "north"},
    {"group": "peernet-supporters", "role": "peer_supporter", "team": "north"},
]
USERS: dict[str, Any] = {
    "alice": {"password": PASSWORD, "groups": ["peernet-supporters", "other"]},
    "cora": {"password": PASSWORD, "groups": ["peernet-coordinators", "peernet-supporters"]},
    "nora": {"password": PASSWORD, "groups": ["unrelated"]},
    "ghost": {"password": PASSWORD},  # no groups claim at all
    "local": {"password": PASSWORD, "groups": ["peernet-supporters"]},
}
LOCAL_PASSWORD = "correct horse battery"
CODE_RE = re.compile(r'data-code="([a-z_]+)"')


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class OidcNode:
    client: TestClient[Any, Any]
    ctx: NodeContext
    clock: FakeClock
    base: str

    async def rows(self, sql: str) -> list[Any]:
        async with self.ctx.db.read() as conn:
            return list((await conn.execute(text(sql))).all())

    async def state(self) -> dict[str, Any]:
        """What a refusal must leave unchanged: users, links, sessions, live tokens."""
        return {
            "users": await self.rows("SELECT username, role, team, active FROM users "
                                     "ORDER BY username"),
            "links": await self.rows("SELECT issuer, subject FROM oidc_identities "
                                     "ORDER BY subject"),
            "sessions": await self.rows("SELECT id FROM web_sessions ORDER BY id"),
            "tokens": await self.rows("SELECT id FROM api_tokens WHERE revoked_at IS NULL "
                                      "ORDER BY id"),
        }

    async def audit(self, action: str) -> list[Any]:
        return await self.rows(f"SELECT action, outcome, detail FROM audit_log "  # noqa: S608
                               f"WHERE action = '{action}' ORDER BY seq")


MakeOidcNode = Callable[..., Awaitable[OidcNode]]


@pytest.fixture
async def make_oidc_node(tmp_path: Path, db_url: str) -> AsyncIterator[MakeOidcNode]:
    made: list[TestClient[Any, Any]] = []

    async def factory(issuer: str, *, port: int, client_id: str = "peernet-node",
                      **oidc: Any) -> OidcNode:
        d = tmp_path / f"node{len(made)}"
        d.mkdir()
        base = f"http://127.0.0.1:{port}"
        settings = NodeSettings.load(
            None, node_id="oidc-fire", name="OIDC Fire Dept", data_dir=d, db_url=db_url,
            public_url=base, oidc={"issuer": issuer, "client_id": client_id, "rules": RULES,
                                   **oidc},
            oidc_client_secret=CLIENT_SECRET)
        clock = FakeClock(now_ms())
        app = create_app(settings, clock=clock, keys=NodeKeys.generate(),
                         pseudonyms=Pseudonymizer(b"o" * 32), hasher=PasswordHasher(MIN))
        client = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        made.append(client)
        ctx = NodeContext.of(app)
        await create_user(ctx, None, UserIn(username="local", password=LOCAL_PASSWORD,
                                            role=Role.ADMIN, team="main"))
        return OidcNode(client, ctx, clock, base)

    yield factory
    for c in made:
        await c.close()


def session_for(base: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def to_callback(s: aiohttp.ClientSession, base: str, login: str,
                      password: str = PASSWORD) -> str:
    """Start a sign-in at `base` and pass the provider's login form; the callback URL the
    provider sends the browser to (not yet visited)."""
    r = await s.get(base + "/login/oidc", allow_redirects=True)
    assert r.status == 200, await r.text()
    page = await r.text()
    action = re.search(r'action="([^"]+)"', page)
    assert action is not None, page
    url = str(r.url.join(aiohttp.client.URL(action.group(1))))
    r = await s.post(url, data={"login": login, "password": password}, allow_redirects=False)
    while r.status in (302, 303):
        loc = str(r.url.join(aiohttp.client.URL(r.headers["Location"])))
        if loc.startswith(base + "/login/oidc/callback"):
            return loc
        r = await s.get(loc, allow_redirects=False)
    raise AssertionError(f"provider did not send the browser back: {r.status} {await r.text()}")


async def sign_in(s: aiohttp.ClientSession, base: str, login: str,
                  password: str = PASSWORD) -> tuple[int, str]:
    """A whole sign-in; the callback's status and page."""
    r = await s.get(await to_callback(s, base, login, password), allow_redirects=False)
    return r.status, await r.text()


def code_of(page: str) -> str | None:
    m = CODE_RE.search(page)
    return m.group(1) if m else None


@pytest.fixture
def port() -> int:
    return free_port()


HUB_RULES = [{"group": "hub-operators", "role": "operator"},
             {"group": "board-analysts", "role": "board_analyst"}]
HUB_USERS: dict[str, Any] = {
    "bea": {"password": PASSWORD, "username": "bea@board.example.gov",
            "groups": ["board-analysts"]},
    "nils": {"password": PASSWORD, "groups": ["fire-peers"]},
    "op": {"password": PASSWORD, "groups": ["hub-operators"]},
}

MakeHub = Callable[..., Awaitable[tuple[TestClient[Any, Any], Any]]]


@pytest.fixture
async def make_hub(tmp_path: Path, db_url: str,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MakeHub]:
    monkeypatch.setattr(hub_users, "PASSWORD_COST", MIN)
    made: list[TestClient[Any, Any]] = []

    async def factory(issuer: str, port: int, *,
                      own_db: bool = False) -> tuple[TestClient[Any, Any], Any]:
        d = tmp_path / "hub"
        d.mkdir()
        settings = HubSettings(
            hub_id="oidc-hub", name="OIDC Hub", data_dir=d,
            db_url=f"sqlite:///{d / 'hub.db'}" if own_db else db_url,
            public_url=f"http://127.0.0.1:{port}",
            operator_token=SecretStr("oidc-operator-token-" + "x" * 20),
            oidc={"issuer": issuer, "client_id": "peernet-hub", "rules": HUB_RULES},
            oidc_client_secret=SecretStr(CLIENT_SECRET))
        app = create_hub_app(settings, clock=FakeClock(now_ms()), keys=NodeKeys.generate())
        c = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await c.start_server()
        made.append(c)
        # A local operator named like the provider's "op": never taken over.
        await hub_users.create_user(app[HUB_DB], PasswordHasher(MIN), username="op",
                                    password="correct horse battery", role="operator",
                                    now_ms=now_ms())
        return c, app[HUB_DB]

    yield factory
    for c in made:
        await c.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    """An OpenID provider in this process (`fake_provider`), signing in as a supporter."""
    provider = FakeProvider()
    await provider.start()
    yield provider
    await provider.close()
