"""Users, logins, browser sessions and API tokens.

- Passwords: argon2id (`federation.passwords`), hashed and checked off the event loop.
- Login: every attempt is counted in the database BEFORE its password is checked
  (`federation.login_throttle`: per username and address with growing delays, plus higher
  per-user and per-address ceilings), so concurrent guesses cannot outrun the limit; a
  throttled attempt is refused with `LoginThrottled` (429 `throttled`, `retry_after_s`) and
  no password check. An unknown username costs the same as a wrong password. Failed and
  throttled logins are audited without the typed username (people type passwords into it
  by mistake). Admins clear a user's counters with `unlock_login` (audited).
- Sessions: a random cookie value; the row keyed by its SHA-256 holds the CSRF token and an
  absolute expiry (`session_hours`).
- API tokens: `pn_` + 32 random bytes, shown once; stored as SHA-256 only, so a request
  is authenticated by one indexed read, never by a password hash. A change of a user's
  password, role or activity revokes all their tokens (and ends their sessions); listing
  and revoking single tokens is `node.accounts.tokens`.
- Admins manage users; nobody can remove the last active admin. A password an admin sets
  (a new user on the page or API, PATCH, or `node.accounts.passwords.reset_password`) must
  be changed at next login; users made from the CLI (`actor` None) choose their own.
- Own password changes, resets, sessions and the paged users list: `node.accounts.passwords`,
  `node.accounts.sessions`, `node.accounts.user_list`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from federation.login_throttle import LoginThrottle
from federation.websecurity import new_token, token_hash
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import ApiToken, User, WebSession, table_of
from node.core.errors import Code, NodeError
from node.core.schemas import TokenIn, TokenOut, UserIn, UserOut, UserPatch
from node.core.times import to_dt
from node.core.vocabulary import Role

__all__ = [
    "LoginThrottled",
    "Session",
    "create_token",
    "create_user",
    "list_users",
    "login",
    "logout",
    "unlock_login",
    "update_user",
    "user_out",
]

U = table_of(User)
T = table_of(ApiToken)
S = table_of(WebSession)


def user_out(row: Any) -> UserOut:
    return UserOut(id=row.id, username=row.username, role=Role(row.role), team=row.team,
                   active=row.active, created_at=to_dt(row.created_at))


async def create_user(ctx: NodeContext, actor: Principal | None, data: UserIn) -> UserOut:
    """Create a user (`actor` None: the CLI, e.g. the first admin at `init`)."""
    now = ctx.now()
    uid = uuid.uuid4()
    pw_hash = await ctx.hasher.hash_async(data.password)
    row = {"id": uid, "username": data.username, "password_hash": pw_hash, "role": data.role,
           "team": data.team, "active": True, "created_at": now, "updated_at": now,
           # An admin chose it (page, API): the user picks their own at first login.
           "must_change_password": actor is not None}
    try:
        async with ctx.db.write() as conn:
            await conn.execute(insert(U), [row])
            await audit.append(conn, ts=now, action="user.create", actor=actor,
                               target_type="user", target_id=uid,
                               detail={"role": data.role.value})
    except IntegrityError:
        raise NodeError(Code.CONFLICT, "that username is taken", "username") from None
    return UserOut(id=uid, username=data.username, role=data.role, team=data.team,
                   active=True, created_at=to_dt(now))


async def list_users(ctx: NodeContext) -> list[UserOut]:
    async with ctx.db.read() as conn:
        rows = (await conn.execute(select(U).order_by(U.c.username))).all()
    return [user_out(r) for r in rows]


async def update_user(ctx: NodeContext, actor: Principal, uid: uuid.UUID,
                      patch: UserPatch) -> UserOut:
    now = ctx.now()
    values: dict[str, Any] = {"updated_at": now}
    changed: list[str] = []
    for name in ("role", "team", "active"):
        value = getattr(patch, name)
        if value is not None:
            values[name] = value
            changed.append(name)
    if patch.password is not None:
        if ctx.settings.oidc is not None and ctx.settings.oidc.only:
            # No password is ever accepted here (as for a reset: node.accounts.passwords).
            raise NodeError(Code.OIDC_REQUIRED, "this node signs in only through the agency's "
                            "identity provider: a password cannot be set")
        values["password_hash"] = await ctx.hasher.hash_async(patch.password)
        # Someone else chose it, so its owner picks their own at next login.
        values["must_change_password"] = uid != actor.user_id
        changed.append("password")
    async with ctx.db.write() as conn:
        row = (await conn.execute(select(U).where(U.c.id == uid))).first()
        if row is None:
            raise NodeError(Code.NOT_FOUND, "no such user")
        demotes = row.role == Role.ADMIN.value and (
            values.get("active") is False or values.get("role", Role.ADMIN) != Role.ADMIN
        )
        if demotes:
            admins = (await conn.execute(select(func.count()).select_from(U).where(
                U.c.role == Role.ADMIN.value, U.c.active.is_(True)))).scalar_one()
            if admins <= 1:
                raise NodeError(Code.CONFLICT, "this is the last active admin")
        await conn.execute(update(U).where(U.c.id == uid).values(**values))
        ctx.db.auth_cache.clear()
        if values.get("active") is False or "password" in changed or "role" in changed:
            await conn.execute(delete(S).where(S.c.user_id == uid))
            # A token carries the rights of the password and role it was made under.
            await conn.execute(update(T).where(T.c.user_id == uid, T.c.revoked_at.is_(None))
                               .values(revoked_at=now))
        await audit.append(conn, ts=now, action="user.update", actor=actor, target_type="user",
                           target_id=uid, detail={"changed": sorted(changed)})
        fresh = (await conn.execute(select(U).where(U.c.id == uid))).one()
    return user_out(fresh)


async def create_token(ctx: NodeContext, user_id: uuid.UUID, data: TokenIn,
                       actor: Principal | None = None) -> TokenOut:
    now = ctx.now()
    token = "pn_" + new_token()
    tid = uuid.uuid4()
    expires = now + data.expires_days * 86_400_000 if data.expires_days else None
    async with ctx.db.write() as conn:
        exists = (await conn.execute(
            select(U.c.id).where(U.c.id == user_id, U.c.active.is_(True)))).first()
        if exists is None:
            raise NodeError(Code.NOT_FOUND, "no such active user")
        await conn.execute(insert(T), [{
            "id": tid, "user_id": user_id, "token_hash": token_hash(token), "label": data.label,
            "created_at": now, "expires_at": expires, "revoked_at": None}])
        await audit.append(conn, ts=now, action="token.create", actor=actor,
                           target_type="user", target_id=user_id, detail={"token": str(tid)})
    return TokenOut(id=tid, label=data.label, token=token,
                    expires_at=to_dt(expires) if expires else None)


class Session:
    """A new browser session: the cookie value (only here, never stored) and its CSRF."""

    def __init__(self, cookie: str, csrf: str, max_age_s: int, role: Role) -> None:
        self.cookie = cookie
        self.csrf = csrf
        self.max_age_s = max_age_s
        self.role = role


class LoginThrottled(NodeError):
    """429 `throttled`; `retry_after_s` is what the `Retry-After` header says."""

    def __init__(self, wait_ms: int) -> None:
        self.retry_after_s = max(1, -(-wait_ms // 1000))
        minutes = -(-wait_ms // 60_000)
        super().__init__(Code.THROTTLED, f"too many attempts; try again in {minutes} min")


async def login(ctx: NodeContext, throttle: LoginThrottle, username: str, password: str,
                address: str) -> Session:
    now = ctx.now()
    wait = await throttle.acquire(ctx.db, username, address, now)  # counted before the check
    if wait:
        err = LoginThrottled(wait)
        async with ctx.db.write() as conn:
            await audit.append(conn, ts=now, action="login.throttled", outcome="refused",
                               detail={"retry_after_s": err.retry_after_s})
        raise err
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(U).where(
            U.c.username == username.strip().casefold(), U.c.active.is_(True)))).first()
    ok = await ctx.hasher.verify_async(row.password_hash if row else None, password)
    if row is None or not ok:
        async with ctx.db.write() as conn:
            await audit.append(conn, ts=now, action="login.failed", outcome="refused",
                               target_type="user" if row else None,
                               target_id=row.id if row else None)
        raise NodeError(Code.BAD_CREDENTIALS, "wrong username or password")
    await throttle.succeeded(ctx.db, username, address, now)
    cookie, csrf = new_token(), new_token()
    max_age = ctx.settings.session_hours * 3600
    who = Principal(row.id, row.username, Role(row.role), row.team, "session")
    async with ctx.db.write() as conn:
        await conn.execute(delete(S).where(S.c.expires_at <= now))
        await conn.execute(insert(S), [{"id": token_hash(cookie), "user_id": row.id,
                                        "csrf_token": csrf, "created_at": now,
                                        "expires_at": now + max_age * 1000,
                                        "last_seen_at": now, "address": address[:64]}])
        await audit.append(conn, ts=now, action="login", actor=who, target_type="user",
                           target_id=row.id)
    return Session(cookie, csrf, max_age, Role(row.role))


async def logout(ctx: NodeContext, p: Principal) -> None:
    if p.session_id is None:
        return
    async with ctx.db.write() as conn:
        await conn.execute(delete(S).where(S.c.id == p.session_id))
        await audit.append(conn, ts=ctx.now(), action="logout", actor=p, target_type="user",
                           target_id=p.user_id)


async def unlock_login(ctx: NodeContext, throttle: LoginThrottle, actor: Principal | None,
                       user: str | uuid.UUID) -> int:
    """Clear every login delay of an existing user, by name or id (`actor` None: the CLI);
    audited. Returns how many counters were removed."""
    where = (U.c.id == user if isinstance(user, uuid.UUID)
             else U.c.username == user.strip().casefold())
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(U.c.id, U.c.username).where(where))).first()
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such user", "username")
    uid = row.id
    removed = await throttle.unlock(ctx.db, row.username)
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action="login.unlock", actor=actor,
                           target_type="user", target_id=uid, detail={"counters": removed})
    return removed
