"""A hub user from a verified OpenID Connect sign-in (the hub's side of
`federation.webkit.oidc`), by the node's rules (`node.oidc.users`):

- the link (issuer, sub) -> hub user lives in `hub_oidc_identities` (a local account with
  the same name is never taken over: `oidc_username_taken`);
- first sign-in creates the user with the mapped role (`operator`, `board_analyst`) and an
  unusable random password; later sign-ins follow the provider's groups (a change ends the
  user's other sessions and revokes their tokens); a user an operator disabled stays out;
- groups that map to no role: refused, and a known user's sessions and tokens end.

`hub_oidc_pending_flows` (here because this module is among `hub.db.TABLE_MODULES`) holds
the sign-in flows started and not yet finished, so any hub process behind the address
finishes them (`federation.webkit.oidc_flows`; migration `hub_oidc_pending_flows_0001`).

The hub keeps no audit log: sign-ins, creations, role changes and refusals are recorded the
way the hub records its other account actions, as lines of the `peernet.hub.users` log
(names, roles and codes only, never a token or a claim value).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Table, delete, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from federation.passwords import PasswordHasher
from federation.webkit.oidc import Identity
from federation.webkit.oidc_config import local_username
from federation.webkit.oidc_flows import pending_flows_table
from federation.webkit.oidc_provider import OidcCode, OidcError
from federation.websecurity import new_token, token_hash
from hub.db import Base, Database
from hub.users.accounts import SESSION_HOURS, HubRole, S, T, U

__all__ = ["PENDING_FLOWS", "HubOidcIdentity", "record_refusal", "sign_in"]

log = logging.getLogger("peernet.hub.users")
USERNAME_MAX = 63


class HubOidcIdentity(Base):
    __tablename__ = "hub_oidc_identities"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("hub_users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_login_at: Mapped[int] = mapped_column(BigInteger)


L: Table = HubOidcIdentity.__table__  # type: ignore[assignment]
PENDING_FLOWS = pending_flows_table(Base.metadata, "hub_oidc_pending_flows")


class OidcSession:
    """A new browser session (the kit's `IssuedSession`)."""

    def __init__(self, cookie: str, max_age_s: int) -> None:
        self.cookie = cookie
        self.max_age_s = max_age_s


async def _linked(conn: AsyncConnection, who: Identity) -> Any:
    return (await conn.execute(
        select(U).join(L, L.c.user_id == U.c.id)
        .where(L.c.issuer == who.issuer, L.c.subject == who.subject))).first()


async def _end_access(conn: AsyncConnection, uid: int, now: int) -> int:
    ended = (await conn.execute(delete(S).where(S.c.user_id == uid))).rowcount or 0
    await conn.execute(sql_update(T).where(T.c.user_id == uid, T.c.revoked_at.is_(None))
                       .values(revoked_at=now))
    return int(ended)


async def sign_in(db: Database, hasher: PasswordHasher, who: Identity, now: int) -> OidcSession:
    assert who.rule is not None
    role = HubRole(who.rule.role)
    async with db.read() as conn:
        known = await _linked(conn, who) is not None
    spare_hash = "" if known else await hasher.hash_async(new_token())  # nobody knows it
    cookie, csrf = new_token(), new_token()
    max_age = SESSION_HOURS * 3600
    async with db.write() as conn:
        row = await _linked(conn, who)
        if row is None:
            if not spare_hash:
                spare_hash = await hasher.hash_async(new_token())
            uid, name = await _create(conn, who, role, spare_hash, now)
        else:
            uid, name = row.id, row.username
            if not row.active:
                raise OidcError(OidcCode.ACCOUNT_DISABLED,
                                "your account on this hub is disabled")
            if row.role != role.value:
                await _end_access(conn, uid, now)
                await conn.execute(sql_update(U).where(U.c.id == uid).values(
                    role=role.value, updated_at=now))
                log.warning("hub user %s role %s -> %s from the identity provider", name,
                            row.role, role.value)
            await conn.execute(sql_update(L).where(L.c.issuer == who.issuer,
                                                   L.c.subject == who.subject)
                               .values(last_login_at=now))
        await conn.execute(delete(S).where(S.c.expires_at <= now))
        await conn.execute(insert(S).values(id=token_hash(cookie), user_id=uid,
                                            csrf_token=csrf, created_at=now,
                                            expires_at=now + max_age * 1000))
    log.info("hub user %s signed in through the identity provider (%s)", name, role.value)
    return OidcSession(cookie, max_age)


async def _create(conn: AsyncConnection, who: Identity, role: HubRole, password_hash: str,
                  now: int) -> tuple[int, str]:
    name = local_username(who.username, USERNAME_MAX)
    if name is None:
        raise OidcError(OidcCode.NO_USERNAME, "the identity provider sent no usable "
                        "username; ask your IT to send preferred_username")
    if (await conn.execute(select(U.c.id).where(U.c.username == name))).first() is not None:
        raise OidcError(OidcCode.USERNAME_TAKEN, "an account with your username already "
                        "exists on this hub; ask an operator to rename it")
    res = await conn.execute(insert(U).values(
        username=name, password_hash=password_hash, role=role.value, active=True,
        created_at=now, updated_at=now))
    uid = int(res.inserted_primary_key[0]) if res.inserted_primary_key else 0
    await conn.execute(insert(L).values(issuer=who.issuer, subject=who.subject, user_id=uid,
                                        created_at=now, last_login_at=now))
    log.warning("hub user %s created by the identity provider (%s)", name, role.value)
    return uid, name


async def record_refusal(db: Database, code: str, who: Identity | None, now: int) -> None:
    """Log a refused sign-in; `oidc_no_role` for a known user also ends their access."""
    ended = 0
    name = None
    if who is not None:
        async with db.write() as conn:
            row = await _linked(conn, who)
            if row is not None:
                name = row.username
                if code == OidcCode.NO_ROLE.value:
                    ended = await _end_access(conn, row.id, now)
    log.warning("identity-provider sign-in refused (%s)%s%s", code,
                f" for hub user {name}" if name else "",
                f"; {ended} sessions ended" if ended else "")
