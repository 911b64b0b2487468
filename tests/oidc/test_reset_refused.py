"""On a server that signs in through the identity provider only (`[oidc] only = true`) a
password reset would hand out a temporary password nobody can use: node and hub refuse it
with 403 `oidc_required` and change nothing (the node audits the refusal). Through the
node's API, the hub's operator page and the hub's CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import text

from federation.clock import FakeClock
from federation.database import make_engine
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.config import HubSettings
from hub.users import accounts as hub_users
from hub.users.cli import user_group as hub_user_group
from node.accounts.users import create_token
from node.core.schemas import TokenIn
from tests.oidc.conftest import HUB_RULES, MakeOidcNode, code_of, now_ms, session_for
from tests.oidc.fake_provider import FakeProvider
from tests.oidc.real_provider import CLIENT_SECRET, free_port

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
PW = "correct horse battery"


async def test_node_refuses_a_reset_when_oidc_is_required(
        fake: FakeProvider, make_oidc_node: MakeOidcNode) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    node = await make_oidc_node(fake.issuer, port=port, only=True)
    async with session_for(base) as s:  # a person signs in through the provider
        r = await s.get(base + "/login/oidc")
        assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
    admin = uuid.UUID(str((await node.rows("SELECT id FROM users WHERE username = 'local'"))[0].id))
    token = (await create_token(node.ctx, admin, TokenIn())).token
    target = (await node.rows("SELECT id FROM users WHERE username = 'fakeuser'"))[0].id
    sql = ("SELECT username, password_hash, must_change_password FROM users ORDER BY 1")
    before = (await node.rows(sql), await node.state())
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{base}/api/v1/users/{target}/reset-password",
                            headers={"Authorization": f"Bearer {token}"})
        body = await r.json()
    assert (r.status, body["error"]["code"]) == (403, "oidc_required")
    assert "identity provider" in body["error"]["message"]
    assert (await node.rows(sql), await node.state()) == before
    refused = await node.audit("password.reset")
    assert [(a.outcome, a.detail) for a in refused] == [("refused",
                                                         '{"code":"oidc_required"}')]
    async with aiohttp.ClientSession() as http:  # nor set through the user's record
        r = await http.patch(f"{base}/api/v1/users/{target}", json={"password": PW * 2},
                             headers={"Authorization": f"Bearer {token}"})
        body = await r.json()
    assert (r.status, body["error"]["code"]) == (403, "oidc_required")
    assert (await node.rows(sql), await node.state()) == before


async def test_hub_refuses_a_reset_when_oidc_is_required(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_users, "PASSWORD_COST", MIN)
    fake = FakeProvider(groups=["hub-operators"])
    await fake.start()
    issuer = fake.issuer
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = HubSettings(
        hub_id="oidc-hub", name="OIDC Hub", data_dir=tmp_path, db_url=db_url,
        public_url=base, operator_token=SecretStr("oidc-operator-token-" + "x" * 20),
        oidc={"issuer": fake.issuer, "client_id": "peernet-hub", "rules": HUB_RULES,
              "only": True},
        oidc_client_secret=SecretStr(CLIENT_SECRET))
    app = create_hub_app(settings, clock=FakeClock(now_ms()), keys=NodeKeys.generate())
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        made = await hub_users.create_user(app[HUB_DB], PasswordHasher(MIN), username="lee",
                                           password=PW, role="board_analyst",
                                           now_ms=now_ms())
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            r = await s.get(base + "/login/oidc")  # an operator, through the provider
            assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
            page = await (await s.get(base + "/operator/users",
                                      headers={"Accept": "text/html"})).text()
            csrf = CSRF_RE.search(page)
            assert csrf is not None
            before = await _hub_users(db_url)
            r = await s.post(f"{base}/operator/users/{made['id']}/reset",
                             data={"csrf": csrf.group(1)}, headers={"Accept": "text/html"},
                             allow_redirects=False)
            assert (r.status, code_of(await r.text())) == (403, "oidc_required")
            assert await _hub_users(db_url) == before
    finally:
        await server.close()
        await fake.close()
    # The CLI refuses the same way.
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'hub_id = "oidc-hub"\nname = "OIDC Hub"\ndata_dir = "{tmp_path}"\n'
                   f'db_url = "{db_url}"\n\n[oidc]\nissuer = "{issuer}"\n'
                   'client_id = "peernet-hub"\nonly = true\n'
                   'rules = [{group = "hub-operators", role = "operator"}]\n',
                   encoding="utf-8")
    res = await asyncio.to_thread(  # the CLI runs its own event loop
        CliRunner().invoke, hub_user_group, ["reset-password", "lee", "--config", str(cfg)])
    assert res.exit_code == 1 and "oidc_required" in res.output, res.output
    assert "temporary password for" not in res.output
    assert await _hub_users(db_url) == before


async def _hub_users(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(
                "SELECT username, password_hash, must_change_password FROM hub_users "
                "ORDER BY 1"))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("only", [True, False])
async def test_the_users_page_offers_a_reset_only_where_passwords_are_used(
        fake: FakeProvider, make_oidc_node: MakeOidcNode, only: bool) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    await make_oidc_node(fake.issuer, port=port, only=only)
    fake.groups = ["peernet-admins"]
    async with session_for(base) as s:  # an admin signs in through the provider
        r = await s.get(base + "/login/oidc")
        assert r.status == 200 and 'data-kit="oidc-done"' in await r.text()
        r = await s.get(base + "/admin/users")
        page = await r.text()
    assert r.status == 200 and "/tokens\">API tokens</a>" in page
    assert ("Reset password" in page) is not only
    assert ('/reset" class="inline"' in page) is not only
