"""Fixtures for the security checks: a real node app and a real hub app on ephemeral ports
(SQLite; the checks are about the HTTP surface, which is the same on PostgreSQL), with one
user per role, plus browser-like login helpers that go through the login forms."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
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
from node.accounts.users import create_token, create_user
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import TokenIn, UserIn
from node.core.vocabulary import Role
from node.web.app import create_app as create_node_app

START_MS = 1_781_524_800_000  # 2026-06-15 12:00 UTC
PASSWORD = "correct horse battery"
NODE_ROLES = {"peer_supporter": "sup", "coordinator": "coord", "admin": "admin",
              "auditor": "audit"}
HUB_ROLES = {"operator": "op", "board_analyst": "analyst"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class App:
    client: TestClient[Any, Any]
    app: web.Application
    clock: FakeClock
    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def snapshot(engine: Any) -> dict[str, int]:
    """Row count of every table (what "nothing stored changed" is checked against)."""
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: __import__("sqlalchemy").inspect(c)
                                    .get_table_names())
        out = {}
        for n in names:
            out[n] = int((await conn.execute(text(f'SELECT count(*) FROM "{n}"'))).scalar_one())
    return out


async def login(client: TestClient[Any, Any], username: str, password: str = PASSWORD,
                *, login_path: str = "/login") -> Any:
    """Log in through the form (pre-session cookie + its CSRF token); the response."""
    page = await client.get(login_path)
    token = CSRF_RE.search(await page.text())
    assert token is not None, "login form without a csrf field"
    return await client.post(login_path, data={"username": username, "password": password,
                                               "csrf": token.group(1)},
                             allow_redirects=False)


async def page_csrf(client: TestClient[Any, Any], path: str) -> str:
    r = await client.get(path)
    m = CSRF_RE.search(await r.text())
    assert m is not None, f"no csrf field on {path}"
    return m.group(1)


MakeApp = Callable[[], Awaitable[App]]


@pytest.fixture
async def node_app(tmp_path: Path) -> AsyncIterator[MakeApp]:
    made: list[TestClient[Any, Any]] = []

    async def factory() -> App:
        d = tmp_path / f"node{len(made)}"
        d.mkdir()
        settings = NodeSettings.load(None, node_id="sec-node", name="Security Node",
                                     data_dir=d, db_url=f"sqlite:///{d / 'node.db'}")
        clock = FakeClock(START_MS)
        app = create_node_app(settings, clock=clock, keys=NodeKeys.generate(),
                              pseudonyms=Pseudonymizer(b"s" * 32), hasher=PasswordHasher(MIN))
        client = TestClient(TestServer(app))
        await client.start_server()
        made.append(client)
        out = App(client, app, clock)
        ctx = NodeContext.of(app)
        for role, name in NODE_ROLES.items():
            u = await create_user(ctx, None, UserIn(username=name, password=PASSWORD,
                                                    role=Role(role), team="main"))
            out.users[name] = u.id
            out.tokens[name] = (await create_token(ctx, u.id, TokenIn(label="t"))).token
        return out

    yield factory
    for c in made:
        await c.close()


@pytest.fixture
async def hub_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MakeApp]:
    monkeypatch.setattr(hub_users, "PASSWORD_COST", MIN)
    made: list[TestClient[Any, Any]] = []

    async def factory() -> App:
        d = tmp_path / f"hub{len(made)}"
        d.mkdir()
        settings = HubSettings(hub_id="sec-hub", name="Security Hub", data_dir=d,
                               db_url=f"sqlite:///{d / 'hub.db'}",
                               operator_token=SecretStr("sec-operator-token-" + "x" * 20))
        clock = FakeClock(START_MS)
        app = create_hub_app(settings, clock=clock, keys=NodeKeys.generate())
        client = TestClient(TestServer(app))
        await client.start_server()
        made.append(client)
        out = App(client, app, clock)
        db = app[HUB_DB]
        for role, name in HUB_ROLES.items():
            u = await hub_users.create_user(db, PasswordHasher(MIN), username=name,
                                            password=PASSWORD, role=role, now_ms=START_MS)
            out.users[name] = u["id"]
            tok = await hub_users.create_token(db, username=name, label="t", now_ms=START_MS)
            out.tokens[name] = tok if isinstance(tok, str) else tok["token"]
        return out

    yield factory
    for c in made:
        await c.close()


def fill(path: str) -> str:
    """A concrete path for a route pattern (ids that exist nowhere)."""
    return (path.replace("{id}", str(uuid.uuid4())).replace("{version}", "1")
            .replace("{activation_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{txn_id}", "txn1").replace("{filename:.*}", "x")
            .replace("{month}", "2026-01"))
