"""A user changes their own password; an admin resets someone's (issue 17 item 3).

Change (`change_password`, `POST /api/v1/account/password`, the `/account/password` page):
the current password is required, and the check goes through the login throttle
(`federation.login_throttle`, counted before the check), so a stolen session cannot be used
to guess the password at full speed. A wrong one is 403 `wrong_password` (field
`current_password`), throttled 429 `throttled`; the new one must differ from the current.
On success every OTHER session of the user ends and all their API tokens are revoked (a
token carries the rights of the password it was made under); the session making the change
stays. It also clears `must_change_password`.

Reset (`reset_password`, `POST /api/v1/users/{id}/reset-password`, the users page, `peernet
node user reset-password`): admins only (`forbidden` otherwise, audited). The node draws a
temporary password (shown once, never stored but as its argon2id hash), ends all the
user's sessions, revokes their tokens and sets `must_change_password`: until the user
changes it every page sends them to the change page and the API answers 403
`password_change_required` (`node.accounts.guard`). An admin setting a password with
`PATCH /api/v1/users/{id}` sets the flag the same way. On a node that signs in through the
agency's identity provider only (`[oidc] only = true`) no password is ever accepted, so a
reset would hand out a password nobody can use: it is refused, 403 `oidc_required`
(audited, nothing changed); the account is the provider's to reset. To let someone in with
a password again (the provider is gone), turn `only` off first.

Both are audited (`password.change`, `password.reset`; refusals with outcome `refused`),
never with a password in the entry.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from pydantic import Field
from sqlalchemy import delete, select, update

from federation.login_throttle import LoginThrottle
from node.accounts.users import LoginThrottled
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import ApiToken, User, WebSession, table_of
from node.core.errors import Code, NodeError
from node.core.schemas import Password, Request, Response
from node.core.vocabulary import Role

__all__ = ["PasswordChangeIn", "PasswordChangeOut", "PasswordResetOut", "change_password",
           "reset_password", "temporary_password"]

U = table_of(User)
S = table_of(WebSession)
T = table_of(ApiToken)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied by hand


class PasswordChangeIn(Request):
    current_password: str = Field(max_length=200)
    new_password: Password


class PasswordChangeOut(Response):
    sessions_ended: int = Field(description="Your other browser sessions that were ended")
    tokens_revoked: int = Field(description="Your API tokens that were revoked")


class PasswordResetOut(Response):
    id: uuid.UUID
    username: str
    temporary_password: str = Field(description="Shown once; the user must change it at "
                                                "their next login")
    sessions_ended: int
    tokens_revoked: int


def temporary_password() -> str:
    """Four groups of four (about 79 bits), e.g. `k7mw-q2xe-9rtd-hb3f`."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


async def _end_all(conn: Any, uid: uuid.UUID, now: int, keep: str | None) -> tuple[int, int]:
    stmt = delete(S).where(S.c.user_id == uid)
    if keep is not None:
        stmt = stmt.where(S.c.id != keep)
    ended = (await conn.execute(stmt)).rowcount or 0
    revoked = (await conn.execute(update(T).where(T.c.user_id == uid, T.c.revoked_at.is_(None))
                                  .values(revoked_at=now))).rowcount or 0
    return int(ended), int(revoked)


async def _refused(ctx: NodeContext, action: str, actor: Principal | None,
                   uid: uuid.UUID, code: Code) -> None:
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action=action, actor=actor, target_type="user",
                           target_id=uid, outcome="refused", detail={"code": code.value})


async def change_password(ctx: NodeContext, throttle: LoginThrottle, p: Principal,
                          data: PasswordChangeIn, address: str) -> PasswordChangeOut:
    now = ctx.now()
    wait = await throttle.acquire(ctx.db, p.username, address, now)
    if wait:
        await _refused(ctx, "password.change", p, p.user_id, Code.THROTTLED)
        raise LoginThrottled(wait)
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(U.c.password_hash).where(
            U.c.id == p.user_id, U.c.active.is_(True)))).first()
    if row is None:
        raise NodeError(Code.UNAUTHENTICATED, "log in first")
    if not await ctx.hasher.verify_async(row.password_hash, data.current_password):
        await _refused(ctx, "password.change", p, p.user_id, Code.WRONG_PASSWORD)
        raise NodeError(Code.WRONG_PASSWORD, "the current password is wrong",
                        "current_password")
    await throttle.succeeded(ctx.db, p.username, address, now)
    if data.new_password == data.current_password:
        raise NodeError(Code.INVALID_INPUT, "choose a password other than the current one",
                        "new_password")
    pw_hash = await ctx.hasher.hash_async(data.new_password)
    async with ctx.db.write() as conn:
        await conn.execute(update(U).where(U.c.id == p.user_id).values(
            password_hash=pw_hash, must_change_password=False, updated_at=now))
        ended, revoked = await _end_all(conn, p.user_id, now, p.session_id)
        await audit.append(conn, ts=now, action="password.change", actor=p,
                           target_type="user", target_id=p.user_id,
                           detail={"sessions_ended": ended, "tokens_revoked": revoked})
    ctx.db.auth_cache.clear()
    return PasswordChangeOut(sessions_ended=ended, tokens_revoked=revoked)


async def reset_password(ctx: NodeContext, actor: Principal | None,
                         user: uuid.UUID | str) -> PasswordResetOut:
    """Reset a user's password (by id, or by name from the CLI where `actor` is None)."""
    where = (U.c.id == user if isinstance(user, uuid.UUID)
             else U.c.username == user.strip().casefold())
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(U.c.id, U.c.username).where(where))).first()
    if actor is not None and actor.role is not Role.ADMIN:
        target = row.id if row is not None else uuid.UUID(int=0)
        await _refused(ctx, "password.reset", actor, target, Code.FORBIDDEN)
        raise NodeError(Code.FORBIDDEN, "only an admin may reset another user's password")
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such user", "username")
    if ctx.settings.oidc is not None and ctx.settings.oidc.only:
        await _refused(ctx, "password.reset", actor, row.id, Code.OIDC_REQUIRED)
        raise NodeError(Code.OIDC_REQUIRED, "this node signs in only through the agency's "
                        "identity provider, so a temporary password could not be used; "
                        "reset the account at the identity provider")
    temp = temporary_password()
    pw_hash = await ctx.hasher.hash_async(temp)
    now = ctx.now()
    async with ctx.db.write() as conn:
        await conn.execute(update(U).where(U.c.id == row.id).values(
            password_hash=pw_hash, must_change_password=True, updated_at=now))
        ended, revoked = await _end_all(conn, row.id, now, None)
        await audit.append(conn, ts=now, action="password.reset", actor=actor,
                           target_type="user", target_id=row.id,
                           detail={"sessions_ended": ended, "tokens_revoked": revoked})
    ctx.db.auth_cache.clear()
    return PasswordResetOut(id=row.id, username=row.username, temporary_password=temp,
                            sessions_ended=ended, tokens_revoked=revoked)
