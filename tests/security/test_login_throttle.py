"""Login throttle attacks through real servers (node and hub) on SQLite and PostgreSQL.

- 40 concurrent wrong passwords from one address: at most the pair limit (5) reach the
  password check (the throttle counted after the check let all 40 through); the rest are
  429 `throttled` with `Retry-After`;
- the same user from another address still logs in (no lock-out by a stranger's guesses);
- the counters are in the database: a second server process over the same database sees
  them; delays grow; a per-user ceiling holds across addresses;
- admins unlock: `peernet node user unlock`, `peernet hub user unlock`, the node's users
  page button (audited); an unknown user is refused and changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import func, select, text

from bench.reliability_report import record
from federation.clock import FakeClock
from federation.database import make_engine, migrate
from federation.keystore import NodeKeys
from federation.login_throttle import LoginThrottle, login_throttle
from federation.passwords import MIN, PasswordHasher
from hub.app import create_app as create_hub_app
from hub.appkeys import DB as HUB_DB
from hub.cli import hub_group
from hub.config import HubSettings
from hub.db import Database as HubDatabase
from hub.users import accounts as hub_users
from node.accounts.users import create_user
from node.cli import node_group
from node.core.config import NodeSettings
from node.core.context import NodeContext
from node.core.pseudonym import Pseudonymizer
from node.core.schemas import UserIn
from node.core.vocabulary import Role
from node.web.app import create_app as create_node_app

START_MS = 1_781_524_800_000
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')
HOME = {"node": "/", "hub": "/dashboard"}


class CountingHasher(PasswordHasher):
    """The real argon2id hasher, counting password checks (what the throttle must bound)."""

    checks = 0

    async def verify_async(self, stored: str | None, password: str) -> bool:
        type(self).checks += 1
        return await super().verify_async(stored, password)


@dataclass
class Server:
    kind: str
    server: TestServer
    app: web.Application
    clock: FakeClock

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


async def _node(tmp_path: Path, db_url: str, hasher: PasswordHasher) -> Server:
    settings = NodeSettings.load(None, node_id="sec-node", name="Security Node",
                                 data_dir=tmp_path, db_url=db_url)
    clock = FakeClock(START_MS)
    app = create_node_app(settings, clock=clock, keys=NodeKeys.generate(),
                          pseudonyms=Pseudonymizer(b"s" * 32), hasher=hasher)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    ctx = NodeContext.of(app)
    if not await _has_user(ctx.db, "users", "sup"):
        for name, role in (("sup", Role.PEER_SUPPORTER), ("admin", Role.ADMIN)):
            await create_user(ctx, None, UserIn(username=name, password=PASSWORD, role=role,
                                                team="main"))
    return Server("node", server, app, clock)


async def _hub(tmp_path: Path, db_url: str, hasher: PasswordHasher) -> Server:
    settings = HubSettings(hub_id="sec-hub", name="Security Hub", data_dir=tmp_path,
                           db_url=db_url, operator_token=SecretStr("o" * 40))
    clock = FakeClock(START_MS)
    app = create_hub_app(settings, clock=clock, keys=NodeKeys.generate())
    app[hub_users.HASHER] = hasher
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    db = app[HUB_DB]
    if not await _has_user(db, "hub_users", "sup"):
        await hub_users.create_user(db, hasher, username="sup", password=PASSWORD,
                                    role="board_analyst", now_ms=START_MS)
    return Server("hub", server, app, clock)


async def _has_user(db: Any, table: str, name: str) -> bool:
    async with db.read() as conn:
        return bool((await conn.execute(text(f"SELECT count(*) FROM {table} WHERE "
                                             "username = :n"), {"n": name})).scalar_one())


MakeServer = Callable[[str], Awaitable[Server]]


@pytest.fixture
async def make_server(tmp_path: Path, db_url: str) -> AsyncIterator[MakeServer]:
    made: list[TestServer] = []

    async def factory(kind: str) -> Server:
        d = tmp_path / f"{kind}{len(made)}"
        d.mkdir()
        s = await (_node if kind == "node" else _hub)(d, db_url, CountingHasher(MIN))
        made.append(s.server)
        return s

    CountingHasher.checks = 0
    yield factory
    for s in made:
        await s.close()


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[str], aiohttp.ClientSession]]:
    """Client sessions from given loopback source addresses (127.0.0.1, 127.0.0.2, ...)."""
    opened: list[aiohttp.ClientSession] = []

    def make(address: str) -> aiohttp.ClientSession:
        s = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(address, 0), limit=100),
            cookie_jar=aiohttp.CookieJar(unsafe=True))
        opened.append(s)
        return s

    yield make
    for s in opened:
        await s.close()


async def _login_form(srv: Server, browser: aiohttp.ClientSession) -> str:
    async with browser.get(srv.url("/login")) as r:
        m = CSRF_RE.search(await r.text())
    assert m is not None
    return m.group(1)


async def _post_login(srv: Server, browser: aiohttp.ClientSession, csrf: str,
                      password: str, username: str = "sup") -> tuple[int, str | None]:
    async with browser.post(srv.url("/login"), data={"csrf": csrf, "username": username,
                                                     "password": password},
                            allow_redirects=False, headers={"Accept": "text/html"}) as r:
        await r.read()
        return r.status, r.headers.get("Retry-After")


async def _rows(srv: Server) -> int:
    db = srv.app[HUB_DB] if srv.kind == "hub" else NodeContext.of(srv.app).db
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(login_throttle))
                    ).scalar_one())


@pytest.mark.parametrize("kind", ["node", "hub"])
async def test_concurrent_wrong_passwords_meet_the_limit(
        make_server: MakeServer, browsers: Callable[[str], aiohttp.ClientSession],
        kind: str) -> None:
    srv = await make_server(kind)
    attacker, supporter = browsers("127.0.0.1"), browsers("127.0.0.2")
    csrf = await _login_form(srv, attacker)
    got = await asyncio.gather(*[_post_login(srv, attacker, csrf, f"wrong guess {i}")
                                 for i in range(40)])
    statuses = sorted(s for s, _ in got)
    assert CountingHasher.checks <= 5, CountingHasher.checks
    assert statuses.count(401) == CountingHasher.checks
    assert statuses.count(429) == 40 - CountingHasher.checks
    assert all(int(ra) >= 1 for s, ra in got if s == 429 and ra is not None)
    assert all(ra is not None for s, ra in got if s == 429)
    # Even the right password waits at the attacker's address, without a password check...
    before = CountingHasher.checks
    assert (await _post_login(srv, attacker, csrf, PASSWORD))[0] == 429
    assert CountingHasher.checks == before
    # ...but the supporter, at their own address, logs in.
    status, _ = await _post_login(srv, supporter, await _login_form(srv, supporter), PASSWORD)
    assert status == 303
    record(f"security-login-throttle-race-{kind}", area="security",
           case=f"concurrent wrong passwords on the {kind} login",
           how="40 concurrent wrong passwords for one user from one address through the real "
               "login form, then the right password from another address",
           result=f"{CountingHasher.checks} password checks (limit 5), the rest 429 throttled "
                  "with Retry-After; the user still logs in from their own address",
           figures={"attempts": 40, "password_checks": CountingHasher.checks,
                    "throttled": statuses.count(429)})


@pytest.mark.parametrize("kind", ["node", "hub"])
async def test_counters_are_shared_by_processes_and_unlock_clears_them(
        make_server: MakeServer, browsers: Callable[[str], aiohttp.ClientSession],
        kind: str) -> None:
    one = await make_server(kind)
    b = browsers("127.0.0.1")
    csrf = await _login_form(one, b)
    for _ in range(4):
        assert (await _post_login(one, b, csrf, "wrong guess"))[0] == 401
    # A second server over the same database (another process, or a restart) goes on
    # counting: the fifth failure starts the delay, the sixth attempt waits.
    two = await make_server(kind)
    b2 = browsers("127.0.0.1")
    csrf2 = await _login_form(two, b2)
    assert (await _post_login(two, b2, csrf2, "wrong guess"))[0] == 401
    status, retry = await _post_login(two, b2, csrf2, PASSWORD)
    assert (status, retry) == (429, "60")
    # The delay ends; the next failure doubles it.
    two.clock.advance(60_000)
    assert (await _post_login(two, b2, csrf2, "wrong guess"))[0] == 401
    assert await _post_login(two, b2, csrf2, PASSWORD) == (429, "120")
    # An admin unlocks: the user logs in at once.
    if kind == "node":
        removed = await _node_unlock(two)
    else:
        removed = await hub_users.unlock_login(two.app[HUB_DB], LoginThrottle(), "SUP")
    assert removed == 2  # the pair's and the user's counters
    assert (await _post_login(two, b2, csrf2, PASSWORD))[0] == 303


async def _node_unlock(srv: Server) -> int:
    from node.accounts.users import unlock_login

    return await unlock_login(NodeContext.of(srv.app), LoginThrottle(), None, "sup")


async def test_user_ceiling_across_addresses(db_url: str) -> None:
    db = HubDatabase(make_engine(db_url))
    try:
        await migrate(db.engine, "hub:migrations")
        t = LoginThrottle(user_free=8, address_free=100)
        waits = [await t.acquire(db, "sup", f"10.0.0.{i}", START_MS) for i in range(8)]
        assert waits == [0] * 8  # 8 addresses, 1 attempt each: the 8th starts the delay
        assert await t.acquire(db, "sup", "10.0.0.99", START_MS) == 60_000
        assert await t.acquire(db, "other", "10.0.0.99", START_MS) == 0  # others unaffected
        assert await t.delayed_users(db, ["sup", "other"], START_MS) == {"sup"}
        # A quiet hour forgets everything.
        later = START_MS + 60_000 + t.window_ms
        assert await t.acquire(db, "sup", "10.0.0.99", later) == 0
    finally:
        await db.dispose()


async def test_a_success_forgives_the_pair(db_url: str) -> None:
    db = HubDatabase(make_engine(db_url))
    try:
        await migrate(db.engine, "hub:migrations")
        t = LoginThrottle()
        for _ in range(4):
            assert await t.acquire(db, "sup", "a", START_MS) == 0
        await t.succeeded(db, "sup", "a", START_MS)
        for _ in range(4):  # four more without a delay: the earlier ones are forgotten
            assert await t.acquire(db, "sup", "a", START_MS) == 0
        async with db.read() as conn:
            rows = {r.key[:2]: r.attempts for r in await conn.execute(select(login_throttle))}
        assert rows == {"p:": 4, "u:": 4, "a:": 4}
        # Nothing stored holds the typed name or address.
        async with db.read() as conn:
            dump = " ".join(str(v) for r in await conn.execute(select(login_throttle))
                            for v in r)
        assert "sup" not in dump
    finally:
        await db.dispose()


async def test_node_users_page_unlock_button(
        make_server: MakeServer, browsers: Callable[[str], aiohttp.ClientSession]) -> None:
    srv = await make_server("node")
    attacker, admin = browsers("127.0.0.1"), browsers("127.0.0.2")
    csrf = await _login_form(srv, attacker)
    for _ in range(5):
        await _post_login(srv, attacker, csrf, "wrong guess")
    assert (await _post_login(srv, attacker, csrf, PASSWORD))[0] == 429
    assert await _post_login(srv, admin, await _login_form(srv, admin), PASSWORD,
                             "admin") == (303, None)
    async with admin.get(srv.url("/admin/users"), headers={"Accept": "text/html"}) as r:
        page = await r.text()
    assert "Login delayed" in page and page.count("Unlock login") == 1
    action = re.search(r'action="(/admin/users/[0-9a-f-]+/unlock)"', page)
    page_csrf = CSRF_RE.search(page)
    assert action is not None and page_csrf is not None
    # Without the CSRF token: refused, nothing cleared.
    async with admin.post(srv.url(action.group(1)), data={}, allow_redirects=False) as r:
        assert r.status == 403
    assert (await _post_login(srv, attacker, csrf, PASSWORD))[0] == 429
    async with admin.post(srv.url(action.group(1)), data={"csrf": page_csrf.group(1)},
                          allow_redirects=False) as r:
        assert r.status == 303
    assert (await _post_login(srv, attacker, csrf, PASSWORD))[0] == 303
    async with NodeContext.of(srv.app).db.read() as conn:
        n = (await conn.execute(text("SELECT count(*) FROM audit_log WHERE action = "
                                     "'login.unlock'"))).scalar_one()
    assert n == 1


def test_cli_unlock_hub(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_users, "PASSWORD_COST", MIN)
    runner = CliRunner()
    hub_cfg = tmp_path / "hub.toml"
    hub_cfg.write_text(f'hub_id = "hub-state"\nname = "State hub"\ndata_dir = "{tmp_path}"\n'
                       f'db_url = "{db_url}"\n', encoding="utf-8")
    r = runner.invoke(hub_group, ["user", "add", "lee", "--role", "operator", "--config",
                                  str(hub_cfg), "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output

    async def lock(url: str) -> None:
        db = HubDatabase(make_engine(url))
        try:
            for _ in range(5):
                await LoginThrottle().acquire(db, "lee", "10.0.0.1", START_MS)
            assert await LoginThrottle().delayed_users(db, ["lee"], START_MS) == {"lee"}
        finally:
            await db.dispose()

    asyncio.run(lock(db_url))
    r = runner.invoke(hub_group, ["user", "unlock", "nobody", "--config", str(hub_cfg)])
    assert r.exit_code == 1 and "not_found" in r.output
    r = runner.invoke(hub_group, ["user", "unlock", "lee", "--config", str(hub_cfg)])
    assert r.exit_code == 0 and "unlocked lee (2 counters cleared)" in r.output, r.output


def test_cli_unlock_node(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    node_cfg = tmp_path / "node.toml"
    r = runner.invoke(node_group, [  # a node command refuses a database never initialised
        "init", "--config", str(node_cfg), "--node-id", "metro-fire", "--name", "Metro Fire",
        "--data-dir", str(tmp_path / "data"), "--db-url", db_url, "--password-stdin",
    ], input=PASSWORD + "\n", env={"PEERNET_PASSPHRASE": "a long enough passphrase"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(node_group, ["user", "add", "--config", str(node_cfg), "sam",
                                   "--role", "peer_supporter", "--password-stdin"],
                      input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    asyncio.run(_lock_node(db_url))
    r = runner.invoke(node_group, ["user", "unlock", "--config", str(node_cfg), "nobody"])
    assert r.exit_code == 1 and "no such user" in r.output
    r = runner.invoke(node_group, ["user", "unlock", "--config", str(node_cfg), "sam"])
    assert r.exit_code == 0 and "unlocked sam (2 counters cleared)" in r.output, r.output
    assert asyncio.run(_node_audit_count(db_url, "login.unlock")) == 1


async def _lock_node(url: str) -> None:
    db = HubDatabase(make_engine(url))  # the shared write discipline; same table on the node
    try:
        for _ in range(5):
            await LoginThrottle().acquire(db, "sam", "10.0.0.1", START_MS)
    finally:
        await db.dispose()


async def _node_audit_count(url: str, action: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM audit_log WHERE action = "
                                                ":a"), {"a": action})).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_migration_matches_the_table(db_url: str, server: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from federation.login_throttle import METADATA

    def diff(conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": False,
            "include_name": lambda n, t, _p: t != "table" or n in METADATA.tables})
        return list(compare_metadata(ctx, METADATA))

    engine = make_engine(db_url)
    try:
        await migrate(engine, f"{server}:migrations")
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
