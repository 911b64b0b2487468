"""A node user from a verified OpenID Connect sign-in: created on first sign-in, its role
and team following the provider's groups at every sign-in, and a browser session.

Rules (each audited in the same transaction as the change it describes):
- first sign-in: a user named from the username claim (`local_username`) with the mapped
  role and team and an unusable random password (it can sign in only through the provider
  until an admin sets a password), the link (issuer, sub) -> user, `user.create` with
  `via: oidc`; a name already used by another account is refused (`oidc_username_taken`,
  nothing created): a local account is never taken over by a provider's user;
- later sign-ins: the provider is the authority on role and team; a change is written,
  the user's other sessions end and their API tokens are revoked (they carry the rights of
  the old role), audited `user.update` with `via: oidc`. A user an admin deactivated stays
  out (`oidc_account_disabled`);
- groups that no longer map to any role: refused (`oidc_no_role`) and, for a known user,
  every session ended and every token revoked at once, so removing someone from the group
  at the provider takes effect at their next sign-in (and shuts sessions still open);
- every sign-in is audited `login` with `via: oidc`; every refusal `login.oidc.refused`
  with its stable code (no claim values: they may hold names).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.webkit.oidc import Identity
from federation.webkit.oidc_config import local_username
from federation.webkit.oidc_provider import OidcCode, OidcError
from federation.websecurity import new_token, token_hash
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import ApiToken, User, WebSession, table_of
from node.core.vocabulary import Role
from node.oidc.db import OidcIdentity

__all__ = ["record_refusal", "sign_in"]

U = table_of(User)
S = table_of(WebSession)
T = table_of(ApiToken)
L = table_of(OidcIdentity)
USERNAME_MAX = 40
VIA = {"via": "oidc"}


class OidcSession:
    """A new browser session (the kit's `IssuedSession`)."""

    def __init__(self, cookie: str, max_age_s: int) -> None:
        self.cookie = cookie
        self.max_age_s = max_age_s


async def _linked(conn: AsyncConnection, who: Identity) -> Any:
    return (await conn.execute(
        select(U).join(L, L.c.user_id == U.c.id)
        .where(L.c.issuer == who.issuer, L.c.subject == who.subject))).first()


async def _end_access(conn: AsyncConnection, uid: uuid.UUID, now: int) -> int:
    """End every session and revoke every token of a user; the number of sessions ended."""
    ended = (await conn.execute(delete(S).where(S.c.user_id == uid))).rowcount or 0
    await conn.execute(update(T).where(T.c.user_id == uid, T.c.revoked_at.is_(None))
                       .values(revoked_at=now))
    return int(ended)


async def sign_in(ctx: NodeContext, who: Identity, address: str) -> OidcSession:
    assert who.rule is not None
    role, team = Role(who.rule.role), who.rule.team or "main"
    now = ctx.now()
    async with ctx.db.read() as conn:
        known = await _linked(conn, who) is not None
    # A first sign-in's password: random, so nobody knows it (hashed only when needed).
    spare_hash = "" if known else await ctx.hasher.hash_async(new_token())
    cookie, csrf = new_token(), new_token()
    max_age = ctx.settings.session_hours * 3600
    async with ctx.db.write() as conn:
        row = await _linked(conn, who)
        if row is None:
            if not spare_hash:
                spare_hash = await ctx.hasher.hash_async(new_token())
            uid = await _create(conn, ctx, who, role, team, spare_hash, now)
        else:
            uid = row.id
            if not row.active:
                raise OidcError(OidcCode.ACCOUNT_DISABLED,
                                "your account on this server is deactivated")
            if (Role(row.role), row.team) != (role, team):
                await _end_access(conn, uid, now)
                await conn.execute(update(U).where(U.c.id == uid).values(
                    role=role, team=team, updated_at=now))
                changed = [n for n, old, new in (("role", Role(row.role), role),
                                                 ("team", row.team, team)) if old != new]
                await audit.append(conn, ts=now, action="user.update", target_type="user",
                                   target_id=uid, detail={"changed": changed,
                                                          "role": role.value, **VIA})
            await conn.execute(update(L).where(L.c.issuer == who.issuer,
                                               L.c.subject == who.subject)
                               .values(last_login_at=now))
        name = (await conn.execute(select(U.c.username).where(U.c.id == uid))).scalar_one()
        session: dict[str, Any] = {"id": token_hash(cookie), "user_id": uid,
                                   "csrf_token": csrf, "created_at": now,
                                   "expires_at": now + max_age * 1000}
        if "address" in S.c:  # the sessions page's columns (node.accounts.sessions)
            session |= {"address": address[:64], "last_seen_at": now}
        await conn.execute(delete(S).where(S.c.expires_at <= now))
        await conn.execute(insert(S), [session])
        await audit.append(conn, ts=now, action="login",
                           actor=Principal(uid, name, role, team, "session"),
                           target_type="user", target_id=uid, detail=VIA)
    ctx.db.auth_cache.clear()
    return OidcSession(cookie, max_age)


async def _create(conn: AsyncConnection, ctx: NodeContext, who: Identity, role: Role,
                  team: str, password_hash: str, now: int) -> uuid.UUID:
    name = local_username(who.username, USERNAME_MAX)
    if name is None:
        raise OidcError(OidcCode.NO_USERNAME, "the identity provider sent no usable "
                        "username; ask your agency's IT to send preferred_username")
    taken = (await conn.execute(select(U.c.id).where(U.c.username == name))).first()
    if taken is not None:
        raise OidcError(OidcCode.USERNAME_TAKEN, "an account with your username already "
                        "exists on this server; ask its admin to rename it")
    uid = uuid.uuid4()
    await conn.execute(insert(U), [{
        "id": uid, "username": name, "password_hash": password_hash, "role": role,
        "team": team, "active": True, "created_at": now, "updated_at": now}])
    await conn.execute(insert(L), [{"issuer": who.issuer, "subject": who.subject,
                                    "user_id": uid, "created_at": now, "last_login_at": now}])
    await audit.append(conn, ts=now, action="user.create", target_type="user", target_id=uid,
                       detail={"role": role.value, **VIA})
    return uid


async def record_refusal(ctx: NodeContext, code: str, who: Identity | None) -> None:
    """Audit a refused sign-in; `oidc_no_role` for a known user also ends their access."""
    now = ctx.now()
    async with ctx.db.write() as conn:
        row = await _linked(conn, who) if who is not None else None
        detail: dict[str, Any] = {"code": code}
        if row is not None and code == OidcCode.NO_ROLE.value:
            detail["sessions_ended"] = await _end_access(conn, row.id, now)
        await audit.append(conn, ts=now, action="login.oidc.refused", outcome="refused",
                           target_type="user" if row is not None else None,
                           target_id=row.id if row is not None else None, detail=detail)
    ctx.db.auth_cache.clear()
