"""Hub users on SQLite and PostgreSQL: create, log in, tokens, disable; bad input is refused
with a stable code and stores nothing; and `peernet hub user add|token|disable`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from federation.clock import FakeClock
from federation.database import make_engine, migrate
from federation.login_throttle import LoginThrottle
from federation.passwords import MIN, PasswordHasher
from federation.websecurity import token_hash
from hub.cli import hub_group
from hub.db import Database
from hub.errors import HubError
from hub.users import accounts as users

PW = "a long calm passphrase"


async def _db(url: str) -> Database:
    db = Database(make_engine(url))
    await migrate(db.engine, "hub:migrations")
    return db


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.read() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                      for t in (users.U, users.S, users.T)])  # type: ignore[return-value]


async def test_users_sessions_and_tokens(db_url: str) -> None:
    db, hasher, clock = await _db(db_url), PasswordHasher(MIN), FakeClock()
    throttle = LoginThrottle()
    try:
        made = await users.create_user(db, hasher, username=" Board.Lee ", password=PW,
                                       role="board_analyst", now_ms=clock.now_ms())
        assert made["username"] == "board.lee"
        async with db.read() as conn:
            stored = (await conn.execute(select(users.U.c.password_hash))).scalar_one()
        assert stored.startswith("$argon2id$") and PW not in stored
        session = await users.login(db, hasher, throttle, username="BOARD.LEE", password=PW,
                                    address="10.0.0.1", now_ms=clock.now_ms())
        assert session.role is users.HubRole.BOARD_ANALYST
        async with db.read() as conn:
            sid = (await conn.execute(select(users.S.c.id))).scalar_one()
        assert sid == token_hash(session.cookie)  # only the hash of the cookie is stored
        token = await users.create_token(db, username="board.lee", label="export",
                                         now_ms=clock.now_ms(), expires_days=1)
        async with db.read() as conn:
            assert (await conn.execute(select(users.T.c.token_hash))).scalar_one() == \
                token_hash(token)
        await users.set_active(db, "board.lee", False, clock.now_ms())
        assert await _counts(db) == (1, 0, 1)  # the session is gone, the token revoked
        async with db.read() as conn:
            assert (await conn.execute(select(users.T.c.revoked_at))).scalar_one() is not None
        with pytest.raises(HubError) as err:
            await users.login(db, hasher, throttle, username="board.lee", password=PW,
                              address="10.0.0.1", now_ms=clock.now_ms())
        assert err.value.code.value == "bad_credentials"
    finally:
        await db.dispose()


async def test_bad_input_is_refused_and_stores_nothing(db_url: str) -> None:
    db, hasher, clock = await _db(db_url), PasswordHasher(MIN), FakeClock()
    try:
        await users.create_user(db, hasher, username="op", password=PW, role="operator",
                                now_ms=clock.now_ms())
        before = await _counts(db)
        for kwargs, code, field in [
            ({"username": "op"}, "conflict", "username"),
            ({"username": "x"}, "invalid_input", "username"),
            ({"username": "bad name"}, "invalid_input", "username"),
            ({"password": "short"}, "invalid_input", "password"),
            ({"role": "admin"}, "invalid_input", "role"),
        ]:
            args = {"username": "someone", "password": PW, "role": "operator", **kwargs}
            with pytest.raises(HubError) as err:
                await users.create_user(db, hasher, now_ms=clock.now_ms(), **args)
            assert (err.value.code.value, err.value.field) == (code, field)
        with pytest.raises(HubError) as err:
            await users.create_token(db, username="nobody", label="x", now_ms=clock.now_ms())
        assert err.value.code.value == "not_found"
        assert await _counts(db) == before
    finally:
        await db.dispose()


async def test_login_throttle_locks_out_then_forgives(sqlite_url: str) -> None:
    db, hasher, clock = await _db(sqlite_url), PasswordHasher(MIN), FakeClock()
    throttle = LoginThrottle()
    try:
        await users.create_user(db, hasher, username="op", password=PW, role="operator",
                                now_ms=clock.now_ms())
        for _ in range(5):
            with pytest.raises(HubError):
                await users.login(db, hasher, throttle, username="op", password="nope nope",
                                  address="a", now_ms=clock.now_ms())
        with pytest.raises(HubError) as err:
            await users.login(db, hasher, throttle, username="op", password=PW, address="a",
                              now_ms=clock.now_ms())
        assert err.value.code.value == "throttled" and err.value.status == 429
        assert (await _counts(db))[1] == 0
        clock.advance(16 * 60_000)
        await users.login(db, hasher, throttle, username="op", password=PW, address="a",
                          now_ms=clock.now_ms())
    finally:
        await db.dispose()


def test_cli_user_add_token_disable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "PASSWORD_COST", MIN)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f'hub_id = "hub-state"\nname = "State hub"\n'
                   f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    run = CliRunner().invoke
    res = run(hub_group, ["user", "add", "lee", "--role", "board_analyst", "--config", str(cfg),
                          "--password-stdin"], input=PW + "\n")
    assert res.exit_code == 0, res.output
    assert "added lee (board_analyst)" in res.output and PW not in res.output
    res = run(hub_group, ["user", "add", "lee", "--role", "operator", "--config", str(cfg),
                          "--password-stdin"], input=PW + "\n")
    assert res.exit_code == 1 and "conflict: that username is taken" in res.output
    res = run(hub_group, ["user", "add", "kim", "--role", "admin", "--config", str(cfg),
                          "--password-stdin"], input=PW + "\n")
    assert res.exit_code == 2  # not a hub role
    res = run(hub_group, ["user", "token", "lee", "--config", str(cfg)])
    assert res.exit_code == 0 and res.output.startswith("ph_")
    res = run(hub_group, ["user", "disable", "lee", "--config", str(cfg)])
    assert res.exit_code == 0
    res = run(hub_group, ["user", "token", "lee", "--config", str(cfg)])
    assert res.exit_code == 1 and "not_found" in res.output
