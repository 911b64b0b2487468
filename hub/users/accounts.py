"""Hub users: operators and board analysts, their logins, sessions and API tokens.

Roles (DESIGN section 3): `operator` runs the hub (relay queue, alarms, roster, users);
`board_analyst` reads only the differentially private statistics and the central activation
log. No hub role can reach more, because the hub holds nothing more.

- Passwords: argon2id (`federation.passwords`), hashed and checked off the event loop.
  `PASSWORD_COST` is the cost new hashes get (tests lower it; stored hashes carry their own).
- Login: every attempt is counted in the database BEFORE its password is checked
  (`federation.login_throttle`: per username and address with growing delays, plus higher
  per-user and per-address ceilings; it holds across processes and restarts), so concurrent
  guesses cannot outrun the limit; a throttled attempt is `LoginThrottled` (429 `throttled`
  with `retry_after_s` for `Retry-After`). `unlock_login` (`peernet hub user unlock`)
  clears a user's delays and logs it. An unknown username costs the same as a wrong
  password. The login form is bound to a pre-session cookie by an HMAC (`login_csrf`).
- Sessions: a random cookie value (`HttpOnly; SameSite=Strict`, `Secure` when the hub's
  public URL is https); the row keyed by its SHA-256 holds the session's CSRF token and an
  absolute expiry (`SESSION_HOURS`). Logging out deletes the row.
- API tokens for scripts: `ph_` + 32 random bytes, shown once (`peernet hub user token`);
  stored as SHA-256 only, so a request costs one indexed read, never a password hash.
  Disabling a user revokes their tokens.

A reset (`hub.users.passwords`) sets `must_change_password`: until the user changes it,
`authorize` sends page requests to `/account/password` and refuses everything else with
403 `password_change_required` (the flag comes with the session or token lookup).

`authorize(request, roles) -> role` replaces the hub's default `app[AUTHORIZE]`. It accepts,
in this order: `Authorization: Bearer <PEERNET_HUB_OPERATOR_TOKEN>` (role `operator`, the
deployment's break-glass token the federation tooling uses), `Authorization: Bearer
<API token>`, then the session cookie. An unsafe method (POST, PUT, ...) on a cookie
session also needs the session's CSRF token (form field `csrf` or header `X-CSRF-Token`):
otherwise 403 `csrf_failed` before the handler runs, so nothing changes. No caller: 401
`unauthenticated`; a role outside `roles`: 403 `forbidden`.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Table,
    delete,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from federation.clock import Clock
from federation.login_throttle import LoginThrottle
from federation.passwords import INTERACTIVE, PasswordHasher
from federation.webkit.csrf import csrf_given, login_secret
from federation.websecurity import csrf_equal, new_token, token_hash
from hub.appkeys import AUTHORIZE, CLOCK, DB, KEYS, SETTINGS
from hub.config import HubSettings
from hub.db import Base, Database
from hub.errors import Code, HubError

__all__ = [
    "HASHER",
    "LOGIN_SECRET",
    "PASSWORD_COST",
    "PRINCIPAL",
    "SESSION_COOKIE",
    "SESSION_HOURS",
    "THROTTLE",
    "ApiToken",
    "HubRole",
    "HubSession",
    "HubUser",
    "LoginThrottled",
    "Principal",
    "Session",
    "create_token",
    "create_user",
    "list_users",
    "load_principal",
    "check_password_rules",
    "login",
    "logout",
    "make_authorize",
    "normal_username",
    "secure_cookies",
    "set_active",
    "setup",
    "unlock_login",
]

log = logging.getLogger("peernet.hub.users")

SESSION_COOKIE = "peernet_hub_session"
SESSION_HOURS = 12
PASSWORD_COST = INTERACTIVE
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD, MAX_PASSWORD = 10, 200
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PASSWORD_PATH = "/account/password"  # noqa: S105 - a path (hub.users.pages)
FORCED_CHANGE_PATHS = frozenset({PASSWORD_PATH, "/logout"})


class HubRole(StrEnum):
    OPERATOR = "operator"
    BOARD_ANALYST = "board_analyst"


class HubUser(Base):
    __tablename__ = "hub_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    # Set by a reset (`hub.users.passwords`, migration users_reset_0001).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False,
                                                       server_default=false())


class HubSession(Base):
    __tablename__ = "hub_sessions"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)  # SHA-256 of the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("hub_users.id", ondelete="CASCADE"),
                                         index=True)
    csrf_token: Mapped[str] = mapped_column(String(43))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class ApiToken(Base):
    __tablename__ = "hub_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("hub_users.id", ondelete="CASCADE"),
                                         index=True)
    token_hash: Mapped[str] = mapped_column(String(43), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


U: Table = HubUser.__table__  # type: ignore[assignment]
S: Table = HubSession.__table__  # type: ignore[assignment]
T: Table = ApiToken.__table__  # type: ignore[assignment]

HASHER = web.AppKey("peernet_hub_hasher", PasswordHasher)
THROTTLE = web.AppKey("peernet_hub_throttle", LoginThrottle)
LOGIN_SECRET = web.AppKey("peernet_hub_login_secret", bytes)


@dataclass(frozen=True)
class Principal:
    """Who is calling. `via`: `operator_token`, `token` or `session`."""

    username: str
    role: HubRole
    via: str
    user_id: int | None = None
    session_id: str | None = None
    csrf_token: str | None = None
    must_change_password: bool = False  # after a reset (hub.users.passwords)


PRINCIPAL = web.RequestKey("peernet_hub_principal", Principal)


@dataclass(frozen=True)
class Session:
    """A new browser session: the cookie value (only here, never stored) and its CSRF."""

    cookie: str
    csrf: str
    max_age_s: int
    role: HubRole


def _username(raw: str) -> str:
    name = raw.strip().casefold()
    if not USERNAME.match(name):
        raise HubError(Code.INVALID_INPUT, "usernames are 2-63 of a-z 0-9 . _ -", "username")
    return name


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise HubError(Code.INVALID_INPUT,
                       f"passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters", "password")


normal_username = _username  # for hub.users.passwords and pages
check_password_rules = _check_password


def _role(raw: str) -> HubRole:
    try:
        return HubRole(raw)
    except ValueError:
        raise HubError(Code.INVALID_INPUT, "role is operator or board_analyst", "role") from None


async def create_user(db: Database, hasher: PasswordHasher, *, username: str, password: str,
                      role: str, now_ms: int) -> dict[str, Any]:
    """Create an active user; `conflict` when the name is taken."""
    name, r = _username(username), _role(role)
    _check_password(password)
    pw = await hasher.hash_async(password)
    try:
        async with db.write() as conn:
            res = await conn.execute(insert(U).values(
                username=name, password_hash=pw, role=r.value, active=True,
                created_at=now_ms, updated_at=now_ms))
            uid = res.inserted_primary_key[0] if res.inserted_primary_key else None
    except IntegrityError:
        raise HubError(Code.CONFLICT, "that username is taken", "username") from None
    return {"id": uid, "username": name, "role": r.value, "active": True}


async def list_users(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (await conn.execute(
            select(U.c.id, U.c.username, U.c.role, U.c.active).order_by(U.c.username))).all()
    return [{"id": r.id, "username": r.username, "role": r.role, "active": r.active}
            for r in rows]


async def set_active(db: Database, username: str, active: bool, now_ms: int,
                     actor: str = "cli") -> None:
    """Enable or disable a user; disabling ends their sessions and tokens at once. The last
    active operator cannot be disabled (`conflict`). Logged like every account action."""
    async with db.write() as conn:
        row = (await conn.execute(select(U.c.id, U.c.role, U.c.active).where(
            U.c.username == _username(username)))).first()
        if row is None:
            raise HubError(Code.NOT_FOUND, "no such user", "username")
        if not active and row.active and row.role == HubRole.OPERATOR.value:
            others = (await conn.execute(select(U.c.id).where(
                U.c.role == HubRole.OPERATOR.value, U.c.active.is_(True),
                U.c.id != row.id).limit(1))).first()
            if others is None:
                raise HubError(Code.CONFLICT, "this is the last active operator")
        await conn.execute(update(U).where(U.c.id == row.id).values(active=active,
                                                                       updated_at=now_ms))
        if not active:
            await conn.execute(delete(S).where(S.c.user_id == row.id))
            await conn.execute(update(T).where(T.c.user_id == row.id,
                                               T.c.revoked_at.is_(None)).values(revoked_at=now_ms))
    log.warning("hub user %s %s by %s", _username(username),
                "enabled" if active else "disabled", actor)


async def create_token(db: Database, *, username: str, label: str, now_ms: int,
                       expires_days: int | None = None) -> str:
    """A new API token for an active user (returned once, stored as its hash)."""
    token = "ph_" + new_token()
    label = label.strip()[:80] or "script"
    async with db.write() as conn:
        row = (await conn.execute(select(U.c.id).where(
            U.c.username == _username(username), U.c.active.is_(True)))).first()
        if row is None:
            raise HubError(Code.NOT_FOUND, "no such active user", "username")
        await conn.execute(insert(T).values(
            user_id=row.id, token_hash=token_hash(token), label=label, created_at=now_ms,
            expires_at=now_ms + expires_days * 86_400_000 if expires_days else None,
            revoked_at=None))
    return token


class LoginThrottled(HubError):
    """429 `throttled`; `retry_after_s` is what the `Retry-After` header says."""

    def __init__(self, wait_ms: int) -> None:
        self.retry_after_s = max(1, -(-wait_ms // 1000))
        super().__init__(Code.THROTTLED,
                         f"too many attempts; try again in {-(-wait_ms // 60_000)} min")


async def login(db: Database, hasher: PasswordHasher, throttle: LoginThrottle, *,
                username: str, password: str, address: str, now_ms: int) -> Session:
    wait = await throttle.acquire(db, username, address, now_ms)  # counted before the check
    if wait:
        raise LoginThrottled(wait)
    async with db.read() as conn:
        row = (await conn.execute(select(U).where(
            U.c.username == username.strip().casefold(), U.c.active.is_(True)))).first()
    ok = await hasher.verify_async(row.password_hash if row else None, password)
    if row is None or not ok:
        raise HubError(Code.BAD_CREDENTIALS, "wrong username or password")
    await throttle.succeeded(db, username, address, now_ms)
    cookie, csrf = new_token(), new_token()
    max_age = SESSION_HOURS * 3600
    async with db.write() as conn:
        await conn.execute(delete(S).where(S.c.expires_at <= now_ms))
        await conn.execute(insert(S).values(
            id=token_hash(cookie), user_id=row.id, csrf_token=csrf, created_at=now_ms,
            expires_at=now_ms + max_age * 1000))
    return Session(cookie, csrf, max_age, HubRole(row.role))


async def unlock_login(db: Database, throttle: LoginThrottle, username: str) -> int:
    """Clear every login delay of an existing user (any address); logged. Returns how many
    counters were removed."""
    name = _username(username)
    async with db.read() as conn:
        if (await conn.execute(select(U.c.id).where(U.c.username == name))).first() is None:
            raise HubError(Code.NOT_FOUND, "no such user", "username")
    removed = await throttle.unlock(db, name)
    log.warning("login delays of hub user %s cleared (%d counters)", name, removed)
    return removed


async def logout(db: Database, p: Principal) -> None:
    if p.session_id is None:
        return
    async with db.write() as conn:
        await conn.execute(delete(S).where(S.c.id == p.session_id))


def secure_cookies(settings: HubSettings) -> bool:
    return settings.public_url.startswith("https://")


async def load_principal(request: web.Request, settings: HubSettings, db: Database,
                         clock: Clock) -> Principal | None:
    """The caller from a bearer token (operator token or API token) or the session cookie;
    None when none is valid."""
    now = clock.now_ms()
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, given = auth.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return None
        op = settings.operator_token.get_secret_value() if settings.operator_token else None
        if op and hmac.compare_digest(given.encode("utf-8", "replace"),
                                      op.encode("utf-8", "replace")):
            return Principal("operator-token", HubRole.OPERATOR, "operator_token")
        stmt = (
            select(U.c.id, U.c.username, U.c.role, U.c.must_change_password)
            .join(T, T.c.user_id == U.c.id)
            .where(T.c.token_hash == token_hash(given), T.c.revoked_at.is_(None),
                   T.c.expires_at.is_(None) | (T.c.expires_at > now), U.c.active.is_(True))
        )
        async with db.read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else Principal(
            row.username, HubRole(row.role), "token", row.id,
            must_change_password=bool(row.must_change_password))
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    sid = token_hash(cookie)
    sstmt = (
        select(U.c.id, U.c.username, U.c.role, S.c.csrf_token, U.c.must_change_password)
        .join(S, S.c.user_id == U.c.id)
        .where(S.c.id == sid, S.c.expires_at > now, U.c.active.is_(True))
    )
    async with db.read() as conn:
        srow = (await conn.execute(sstmt)).first()
    if srow is None:
        return None
    return Principal(srow.username, HubRole(srow.role), "session", srow.id, sid,
                     srow.csrf_token, bool(srow.must_change_password))


def make_authorize(app: web.Application) -> Any:
    """The session/token check for `app[AUTHORIZE]` (see module docstring)."""

    async def authorize(request: web.Request, roles: frozenset[str]) -> str:
        p = request.get(PRINCIPAL)
        if p is None:
            p = await load_principal(request, app[SETTINGS], app[DB], app[CLOCK])
            if p is None:
                raise HubError(Code.UNAUTHENTICATED, "log in or send a valid token")
            request[PRINCIPAL] = p
        if p.role.value not in roles:
            raise HubError(Code.FORBIDDEN, "your role may not use this")
        if p.must_change_password and request.path not in FORCED_CHANGE_PATHS:
            if request.method == "GET" and not request.path.startswith("/api/"):
                raise web.HTTPSeeOther(PASSWORD_PATH)
            raise HubError(Code.PASSWORD_CHANGE_REQUIRED,
                           "change your password first: it was reset")
        if (request.method not in SAFE_METHODS and p.via == "session"
                and not csrf_equal(p.csrf_token, await csrf_given(request))):
            raise HubError(Code.CSRF_FAILED, "the form expired or was not sent from this site")
        return p.role.value

    return authorize


def setup(app: web.Application) -> None:
    """Hub feature hook: password hasher, login throttle and the session/token check."""
    app[HASHER] = PasswordHasher(PASSWORD_COST)
    app[THROTTLE] = LoginThrottle()  # counters in the database
    app[LOGIN_SECRET] = login_secret(bytes(app[KEYS].signing_key))  # same in every process
    app[AUTHORIZE] = make_authorize(app)
