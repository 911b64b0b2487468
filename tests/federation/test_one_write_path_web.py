"""One write path on SQLite through a node's web and API requests (issue 22, item 2).

`tests/federation/test_one_write_path.py` watches federation traffic, releases and the
roster store; this watches what a browser and an API client make a node write: a login
through the form (session, login throttle, audit), a wrong password (throttle counters),
encounters and their follow-ups through the JSON API (the fast writer on SQLite), a user
created by an admin, a token, and a logout; on the hub, an operator's login (and a wrong
password) and logout. No statement that changes data may run on a
SQLite connection `db.write()` did not open (the same detector as that test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from node.accounts.users import create_token, create_user
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import TokenIn, UserIn
from node.core.vocabulary import Role
from node.web.app import create_app
from tests.federation.test_one_write_path import Outside, outside  # noqa: F401  (fixture)
from tests.node.conftest import START_MS, encounter
from tests.security.conftest import CSRF_RE, MakeApp, hub_app, login  # noqa: F401

PASSWORD = "correct horse battery"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], NodeContext]]:
    settings = NodeSettings.load(None, node_id="one-path", name="One Path",
                                 data_dir=tmp_path, db_url=f"sqlite:///{tmp_path / 'n.db'}")
    app = create_app(settings, clock=FakeClock(START_MS), keys=NodeKeys.generate(),
                     pseudonyms=Pseudonymizer(b"w" * 32), hasher=PasswordHasher(MIN))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, NodeContext.of(app)
    finally:
        await client.close()


async def test_web_and_api_requests_write_only_through_the_write_path(
    node: tuple[TestClient[Any, Any], NodeContext], outside: Outside  # noqa: F811
) -> None:
    client, ctx = node
    admin = await create_user(ctx, None, UserIn(username="admin", password=PASSWORD,
                                                role=Role.ADMIN, team="main"))
    sup = await create_user(ctx, None, UserIn(username="sup1", password=PASSWORD,
                                              role=Role.PEER_SUPPORTER, team="main"))
    admin_token = (await create_token(ctx, admin.id, TokenIn(label="t"))).token
    sup_token = (await create_token(ctx, sup.id, TokenIn(label="t"))).token
    outside.on = True

    r = await login(client, "sup1", "not the password")
    assert r.status in (200, 400, 401, 429)
    r = await login(client, "sup1")
    assert r.status in (302, 303), r.status
    page = await client.get("/")
    assert page.status == 200
    sup_h = {"Authorization": f"Bearer {sup_token}"}
    for i in range(3):
        r = await client.post("/api/v1/encounters", headers=sup_h,
                              json=encounter(recipient=f"E-{i}", follow_up_due="2026-06-16"))
        assert r.status == 201, await r.text()
    fus = await (await client.get("/api/v1/follow-ups", headers=sup_h)).json()
    fid = fus["items"][0]["id"]
    r = await client.post(f"/api/v1/follow-ups/{fid}/complete", headers=sup_h, json={})
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/users", headers={"Authorization": f"Bearer {admin_token}"},
                          json={"username": "sup9", "password": PASSWORD,
                                "role": "peer_supporter", "team": "main"})
    assert r.status == 201, await r.text()
    home = await client.get("/")
    m = CSRF_RE.search(await home.text())
    assert m is not None
    r = await client.post("/logout", data={"csrf": m.group(1)}, allow_redirects=False)
    assert r.status in (302, 303), r.status
    assert outside.seen == []

    # The detector is live: a write on the read engine is caught.
    async with ctx.db.engine.begin() as conn:
        await conn.execute(text("UPDATE settings SET key = key WHERE 1 = 0"))
    assert outside.seen == ["UPDATE settings SET key = key WHERE 1 = 0"]


async def test_hub_web_requests_write_only_through_the_write_path(
    hub_app: MakeApp, outside: Outside  # noqa: F811
) -> None:
    app = await hub_app()
    outside.on = True
    r = await login(app.client, "op", "not the password")
    assert r.status in (200, 400, 401, 429)
    r = await login(app.client, "op")
    assert r.status in (302, 303), r.status
    page = await app.client.get("/dashboard")
    assert page.status == 200
    m = CSRF_RE.search(await page.text())
    assert m is not None
    r = await app.client.post("/logout", data={"csrf": m.group(1)}, allow_redirects=False)
    assert r.status in (302, 303), r.status
    assert outside.seen == []
