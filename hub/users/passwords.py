"""Hub users: the operator's paged user list, a password reset, and one's own password
change (issue 17 item 5, the same rules as the node's `node.accounts.passwords`).

- `page_users`: one page of hub users by username, with the total matching the filters
  (role, active, part of the name; `%` and `_` are literal).
- `reset_password` (operators, `peernet hub user reset-password`): a temporary password
  shown once; the user's sessions end, their API tokens are revoked and
  `must_change_password` is set, so `hub.users.accounts.authorize` sends their pages to
  `/account/password` and refuses the API with `password_change_required`. On a hub that
  signs in through the state's identity provider only (`[oidc] only = true`) no password is
  accepted, so the reset is refused, 403 `oidc_required`, nothing changed (turn `only` off
  first to let someone in with a password again).
- `change_password` (every hub user): the current password is checked through the login
  throttle (a wrong one is 403 `wrong_password`, too many 429 `throttled`); the new one must
  differ. The user's other sessions end and their API tokens are revoked; the flag clears.

The hub has no audit chain: like `unlock_login` and `set_active`, each account action is a
log line on `peernet.hub.users` naming the user and who did it (never a password).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.login_throttle import LoginThrottle
from federation.passwords import PasswordHasher
from hub.db import Database
from hub.errors import Code, HubError
from hub.users.accounts import (
    HubRole,
    LoginThrottled,
    Principal,
    S,
    T,
    U,
    check_password_rules,
    normal_username,
)

__all__ = ["Reset", "UserFilter", "change_password", "page_users", "reset_password",
           "temporary_password"]

log = logging.getLogger("peernet.hub.users")
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied by hand


@dataclass(frozen=True)
class UserFilter:
    role: HubRole | None = None
    active: bool | None = None
    q: str | None = None

    def where(self) -> list[Any]:
        out: list[Any] = []
        if self.role is not None:
            out.append(U.c.role == self.role.value)
        if self.active is not None:
            out.append(U.c.active.is_(self.active))
        if self.q:
            escaped = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(U.c.username.like(f"%{escaped}%", escape="\\"))
        return out


@dataclass(frozen=True)
class Reset:
    username: str
    temporary_password: str
    sessions_ended: int
    tokens_revoked: int


def temporary_password() -> str:
    """Four groups of four (about 79 bits), e.g. `k7mw-q2xe-9rtd-hb3f`."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


async def page_users(db: Database, f: UserFilter, offset: int,
                     limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of users by username, and how many match `f`."""
    async with db.read() as conn:
        total = int((await conn.execute(
            select(func.count()).select_from(U).where(*f.where()))).scalar_one())
        rows = (await conn.execute(
            select(U.c.id, U.c.username, U.c.role, U.c.active, U.c.must_change_password)
            .where(*f.where()).order_by(U.c.username).offset(offset).limit(limit))).all()
    return [{"id": r.id, "username": r.username, "role": r.role, "active": r.active,
             "must_change_password": bool(r.must_change_password)} for r in rows], total


async def _end_all(conn: AsyncConnection, uid: int, now_ms: int,
                   keep: str | None) -> tuple[int, int]:
    stmt = delete(S).where(S.c.user_id == uid)
    if keep is not None:
        stmt = stmt.where(S.c.id != keep)
    ended = (await conn.execute(stmt)).rowcount or 0
    revoked = (await conn.execute(update(T).where(T.c.user_id == uid, T.c.revoked_at.is_(None))
                                  .values(revoked_at=now_ms))).rowcount or 0
    return int(ended), int(revoked)


async def reset_password(db: Database, hasher: PasswordHasher, user: str | int, *,
                         now_ms: int, oidc_only: bool, actor: str = "cli") -> Reset:
    """Reset a user's password (by name, or id from the operator's page); `oidc_only`: the
    hub's `[oidc] only` (then refused, `oidc_required`)."""
    where = U.c.id == user if isinstance(user, int) else U.c.username == normal_username(user)
    async with db.read() as conn:
        row = (await conn.execute(select(U.c.id, U.c.username).where(where))).first()
    if row is None:
        raise HubError(Code.NOT_FOUND, "no such user", "username")
    if oidc_only:
        log.warning("password reset of hub user %s by %s refused: oidc_required",
                    row.username, actor)
        raise HubError(Code.OIDC_REQUIRED, "this hub signs in only through the identity "
                       "provider, so a temporary password could not be used; reset the "
                       "account at the identity provider")
    temp = temporary_password()
    pw = await hasher.hash_async(temp)
    async with db.write() as conn:
        await conn.execute(update(U).where(U.c.id == row.id).values(
            password_hash=pw, must_change_password=True, updated_at=now_ms))
        ended, revoked = await _end_all(conn, row.id, now_ms, None)
    log.warning("password of hub user %s reset by %s (%d sessions ended, %d tokens revoked)",
                row.username, actor, ended, revoked)
    return Reset(row.username, temp, ended, revoked)


async def change_password(db: Database, hasher: PasswordHasher, throttle: LoginThrottle,
                          p: Principal, *, current: str, new: str, address: str,
                          now_ms: int) -> tuple[int, int]:
    """Change the caller's own password; returns (other sessions ended, tokens revoked)."""
    if p.user_id is None:  # the deployment's operator token has no password
        raise HubError(Code.FORBIDDEN, "the operator token has no password to change")
    wait = await throttle.acquire(db, p.username, address, now_ms)
    if wait:
        log.warning("password change of hub user %s refused: throttled", p.username)
        raise LoginThrottled(wait)
    async with db.read() as conn:
        stored = (await conn.execute(select(U.c.password_hash).where(
            U.c.id == p.user_id, U.c.active.is_(True)))).scalar()
    if stored is None:
        raise HubError(Code.UNAUTHENTICATED, "log in or send a valid token")
    if not await hasher.verify_async(stored, current):
        log.warning("password change of hub user %s refused: wrong current password",
                    p.username)
        raise HubError(Code.WRONG_PASSWORD, "the current password is wrong",
                       "current_password")
    await throttle.succeeded(db, p.username, address, now_ms)
    check_password_rules(new)
    if new == current:
        raise HubError(Code.INVALID_INPUT, "choose a password other than the current one",
                       "new_password")
    pw = await hasher.hash_async(new)
    async with db.write() as conn:
        await conn.execute(update(U).where(U.c.id == p.user_id).values(
            password_hash=pw, must_change_password=False, updated_at=now_ms))
        ended, revoked = await _end_all(conn, p.user_id, now_ms, p.session_id)
    log.warning("hub user %s changed their password (%d other sessions ended, %d tokens "
                "revoked)", p.username, ended, revoked)
    return ended, revoked
