"""Issue 17 item 5 (hub): the operator's user list (paged, counted, filtered), disabling and
enabling, a password reset with a forced change at next login, and a hub user changing
their own password; the same through `peernet hub user list|reset-password|enable`.
A real hub on an ephemeral port over SQLite and PostgreSQL; refusals (wrong role, missing
CSRF token, wrong current password, the last operator) carry stable codes and change
nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import text

from federation.clock import FakeClock
from federation.keystore import NodeKeys
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app
from hub.appkeys import DB
from hub.cli import hub_group
from hub.config import HubSettings
from hub.users import accounts as users

START_MS = 1_781_524_800_000
PW = "a long calm passphrase"
NEW = "my own new passphrase"
HTML = {"Accept": "text/html"}
CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')


@dataclass
class Hub:
    server: TestServer
    app: web.Application
    ids: dict[str, int]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.app[DB].read() as conn:
            return (await conn.execute(text(sql), params)).scalar()


class Browser:
    def __init__(self, hub: Hub) -> None:
        self.http = aiohttp.ClientSession(base_url=str(hub.server.make_url("/")),
                                          cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def log_in(self, who: str, password: str = PW) -> int:
        r = await self.http.get("/login", headers=HTML)
        token = CSRF_RE.search(await r.text())
        assert token is not None
        r = await self.http.post("/login", data={"csrf": token.group(1), "username": who,
                                                 "password": password},
                                 headers=HTML, allow_redirects=False)
        if r.status == 303:
            await self.page("/account/password")
        return r.status

    async def page(self, path: str) -> tuple[int, str]:
        r = await self.http.get(path, headers=HTML, allow_redirects=False)
        body = await r.text()
        m = CSRF_RE.search(body)
        if m and m.group(1):
            self.csrf = m.group(1)
        return r.status, body

    async def post(self, path: str, data: dict[str, str], csrf: bool = True
                   ) -> aiohttp.ClientResponse:
        r = await self.http.post(path, data={"csrf": self.csrf, **data} if csrf else data,
                                 headers=HTML, allow_redirects=False)
        await r.read()
        return r


@pytest.fixture
async def hub(tmp_path: Path, db_url: str) -> AsyncIterator[Hub]:
    settings = HubSettings(hub_id="acct-hub", name="Accounts Hub", data_dir=tmp_path,
                           db_url=db_url, operator_token=SecretStr("o" * 40))
    app = create_app(settings, clock=FakeClock(START_MS), keys=NodeKeys.generate())
    hasher = PasswordHasher(MIN)
    app[users.HASHER] = hasher
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    ids = {}
    for name, role in (("op", "operator"), ("lee", "board_analyst"),
                       ("kim", "board_analyst")):
        made = await users.create_user(app[DB], hasher, username=name, password=PW,
                                       role=role, now_ms=START_MS)
        ids[name] = int(made["id"])
    try:
        yield Hub(server, app, ids)
    finally:
        await server.close()


async def _token(hub: Hub, who: str) -> dict[str, str]:
    token = await users.create_token(hub.app[DB], username=who, label="t", now_ms=START_MS)
    return {"Authorization": f"Bearer {token}"}


async def _stats(hub: Hub, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            str(hub.server.make_url("/api/v1/stats")), headers=headers) as r:
        return r.status, await r.json()


async def test_operator_user_list_pages_and_filters(hub: Hub) -> None:
    for i in range(52):
        await users.create_user(hub.app[DB], hub.app[users.HASHER], username=f"analyst{i:02d}",
                                password=PW, role="board_analyst", now_ms=START_MS)
    op, lee = Browser(hub), Browser(hub)
    try:
        assert await op.log_in("op") == 303
        status, page = await op.page("/operator/users")
        assert status == 200 and "1–50 of 55" in page and 'rel="next"' in page
        status, page = await op.page("/operator/users?page=2")
        assert "51–55 of 55" in page and page.count("data-user=") == 5
        status, page = await op.page("/operator/users?role=operator")
        assert "1–1 of 1" in page and "<strong>op</strong>" in page
        status, page = await op.page("/operator/users?q=analyst1&active=yes")
        assert "1–10 of 10" in page
        status, page = await op.page("/operator/users?q=%25")
        assert status == 400 and 'data-code="invalid_input"' in page
        status, page = await op.page("/operator/users?role=admin")
        assert status == 400 and 'data-code="invalid_input"' in page
        assert await lee.log_in("lee") == 303
        status, page = await lee.page("/operator/users")
        assert status == 403 and 'data-code="forbidden"' in page
    finally:
        await op.http.close()
        await lee.http.close()


async def test_disable_enable_and_the_last_operator(hub: Hub,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    op, lee = Browser(hub), Browser(hub)
    token = await _token(hub, "lee")
    try:
        assert await op.log_in("op") == 303
        assert await lee.log_in("lee") == 303
        await op.page("/operator/users")
        # Refused: an analyst, a post without the CSRF token, the last operator.
        await lee.page("/dashboard")
        r = await lee.post(f"/operator/users/{hub.ids['kim']}/active", {"active": "no"})
        assert r.status == 403 and 'data-code="forbidden"' in await r.text()
        r = await op.post(f"/operator/users/{hub.ids['lee']}/active", {"active": "no"},
                          csrf=False)
        assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
        r = await op.post(f"/operator/users/{hub.ids['op']}/active", {"active": "no"})
        assert r.status == 409 and 'data-code="conflict"' in await r.text()
        r = await op.post(f"/operator/users/{hub.ids['lee']}/active", {"active": "maybe"})
        assert r.status == 400 and 'data-code="invalid_input"' in await r.text()
        r = await op.post("/operator/users/999999/active", {"active": "no"})
        assert r.status == 404
        assert await hub.scalar("SELECT count(*) FROM hub_users WHERE active = true") == 3
        assert (await _stats(hub, token))[0] == 200
        # Disable: lee's session ends and the token stops working; logged.
        with caplog.at_level(logging.WARNING, "peernet.hub.users"):
            r = await op.post(f"/operator/users/{hub.ids['lee']}/active", {"active": "no"})
        assert (r.status, r.headers["Location"]) == (303, "/operator/users")
        assert "hub user lee disabled by op" in caplog.text
        assert (await lee.page("/dashboard"))[0] == 303
        assert (await _stats(hub, token))[0] == 401
        assert await lee.log_in("lee") == 401
        r = await op.post(f"/operator/users/{hub.ids['lee']}/active", {"active": "yes"})
        assert r.status == 303
        assert await lee.log_in("lee") == 303
    finally:
        await op.http.close()
        await lee.http.close()


async def test_reset_forces_a_change_and_own_change(hub: Hub,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    op, lee, lee2 = Browser(hub), Browser(hub), Browser(hub)
    token = await _token(hub, "lee")
    try:
        assert await op.log_in("op") == 303
        assert await lee.log_in("lee") == 303
        before = await hub.scalar("SELECT password_hash FROM hub_users WHERE username = 'lee'")
        await lee.page("/dashboard")
        r = await lee.post(f"/operator/users/{hub.ids['kim']}/reset", {})
        assert r.status == 403 and 'data-code="forbidden"' in await r.text()
        await op.page("/operator/users")
        r = await op.post(f"/operator/users/{hub.ids['lee']}/reset", {}, csrf=False)
        assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
        assert await hub.scalar("SELECT password_hash FROM hub_users WHERE username = 'lee'"
                                ) == before
        assert (await lee.page("/dashboard"))[0] == 200
        with caplog.at_level(logging.WARNING, "peernet.hub.users"):
            r = await op.post(f"/operator/users/{hub.ids['lee']}/reset", {})
        page = await r.text()
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        temp = page.split('id="temporary-password">')[1].split("<")[0]
        assert "password of hub user lee reset by op" in caplog.text and temp not in caplog.text
        assert (await lee.page("/dashboard"))[0] == 303  # session ended
        assert (await _stats(hub, token))[0] == 401  # token revoked
        # Next login with the temporary password: only the change page.
        assert await lee.log_in("lee", temp) == 303
        for path in ("/dashboard", "/dashboard/activations", "/"):
            r = await lee.http.get(path, headers=HTML)
            assert str(r.url).endswith("/account/password"), path
        status, page = await lee.page("/account/password")
        assert 'id="forced"' in page
        fresh = await _token(hub, "lee")
        status, body = await _stats(hub, fresh)
        assert (status, body["error"]["code"]) == (403, "password_change_required")
        assert await lee2.log_in("lee", temp) == 303  # a second session, to see it end
        r = await lee.post("/account/password", {"current_password": "not it at all",
                                                  "new_password": NEW, "confirm": NEW})
        assert r.status == 403 and 'data-code="wrong_password"' in await r.text()
        r = await lee.post("/account/password", {"current_password": temp,
                                                  "new_password": NEW, "confirm": "other"})
        assert r.status == 400 and 'data-code="invalid_input"' in await r.text()
        r = await lee.post("/account/password", {"current_password": temp,
                                                  "new_password": NEW, "confirm": NEW},
                           csrf=False)
        assert r.status == 403 and 'data-code="csrf_failed"' in await r.text()
        assert await hub.scalar("SELECT must_change_password FROM hub_users WHERE "
                                "username = 'lee'") in (True, 1)
        r = await lee.post("/account/password", {"current_password": temp,
                                                  "new_password": NEW, "confirm": NEW})
        assert (r.status, r.headers["Location"]) == (303, "/dashboard")
        assert (await lee.page("/dashboard"))[0] == 200
        assert (await lee2.page("/dashboard"))[0] == 303  # the other session ended
        assert (await _stats(hub, fresh))[0] == 401  # tokens revoked by the change
        assert await hub.scalar("SELECT must_change_password FROM hub_users WHERE "
                                "username = 'lee'") in (False, 0)
        assert await Browser(hub).log_in("lee", NEW) == 303
    finally:
        for b in (op, lee, lee2):
            await b.http.close()


def test_cli_list_reset_enable(tmp_path: Path, db_url: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "PASSWORD_COST", MIN)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'hub_id = "hub-state"\nname = "State hub"\ndata_dir = "{tmp_path}"\n'
                   f'db_url = "{db_url}"\n', encoding="utf-8")
    run = CliRunner().invoke
    for name, role in (("op", "operator"), ("lee", "board_analyst")):
        res = run(hub_group, ["user", "add", name, "--role", role, "--config", str(cfg),
                              "--password-stdin"], input=PW + "\n")
        assert res.exit_code == 0, res.output
    res = run(hub_group, ["user", "disable", "op", "--config", str(cfg)])
    assert res.exit_code == 1 and "conflict: this is the last active operator" in res.output
    res = run(hub_group, ["user", "reset-password", "nobody", "--config", str(cfg)])
    assert res.exit_code == 1 and "not_found" in res.output
    res = run(hub_group, ["user", "reset-password", "lee", "--config", str(cfg)])
    assert res.exit_code == 0 and "temporary password for lee" in res.output, res.output
    res = run(hub_group, ["user", "disable", "lee", "--config", str(cfg)])
    assert res.exit_code == 0
    res = run(hub_group, ["user", "list", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[1].split() == ["lee", "board_analyst", "disabled,", "must", "change",
                                "password"]
    assert lines[2].split() == ["op", "operator", "active"] and lines[-1] == "2 users"
    res = run(hub_group, ["user", "list", "--disabled", "--config", str(cfg)])
    assert res.output.splitlines()[-1] == "1 user"
    res = run(hub_group, ["user", "list", "--role", "operator", "--search", "O",
                          "--config", str(cfg)])
    assert res.output.splitlines()[-1] == "1 user"
    res = run(hub_group, ["user", "enable", "lee", "--config", str(cfg)])
    assert res.exit_code == 0 and "enabled lee" in res.output
    res = run(hub_group, ["user", "list", "--active", "--config", str(cfg)])
    assert res.output.splitlines()[-1] == "2 users"


async def test_hub_users_table_matches_its_model(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from federation.database import make_engine, migrate
    from hub.db import Base

    only = MetaData()
    Base.metadata.tables["hub_users"].to_metadata(only)
    engine = make_engine(db_url)
    try:
        await migrate(engine, "hub:migrations")
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(
                c, opts={"compare_type": False,
                         "include_name": lambda n, t, _p: t != "table" or n == "hub_users"}),
                only))
        assert diff == []
    finally:
        await engine.dispose()
