"""Listing and revoking API tokens (`GET /api/v1/tokens`, `DELETE /api/v1/tokens/{id}`,
`peernet node token list|revoke`).

Why: a token is a password-equivalent a script keeps for months; its owner must be able to
see what they hold and end one, and an admin must be able to end anyone's (a lost laptop).
Tokens are created in `node.accounts.users.create_token`; a password, role or activity change
revokes all of a user's tokens there.

Rules: anyone lists and revokes their own tokens; only an admin names another user or
revokes another user's token (else 403 `forbidden`, audited as `access.refused`). An unknown
id is 404 `not_found`. Revoking is audited (`token.revoke`) and idempotent: a token already
revoked keeps its first revocation time. `actor=None` is the CLI (the server's operator).
Nothing here ever shows a token or its hash.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select, update

from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import ApiToken, User, table_of
from node.core.errors import Code, NodeError
from node.core.paging import Cursor, NextCursor
from node.core.schemas import USERNAME_PATTERN, Request, Response
from node.core.times import to_dt
from node.core.vocabulary import Role

__all__ = ["TokenInfo", "TokenList", "TokenQuery", "list_tokens", "revoke_token"]

U = table_of(User)
T = table_of(ApiToken)


class TokenQuery(Request):
    user: Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)] | None = Field(
        default=None, description="Whose tokens (admins only; default: yours)")
    limit: int = Field(default=200, ge=1, le=1000)
    cursor: Cursor = None


class TokenInfo(Response):
    id: uuid.UUID
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: Literal["active", "expired", "revoked"]


class TokenList(Response):
    items: list[TokenInfo]
    next_cursor: NextCursor = None


def _info(row: Any, now: int) -> TokenInfo:
    state: Literal["active", "expired", "revoked"] = "active"
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    return TokenInfo(id=row.id, user=row.username, label=row.label,
                     created_at=to_dt(row.created_at),
                     expires_at=to_dt(row.expires_at) if row.expires_at else None,
                     revoked_at=to_dt(row.revoked_at) if row.revoked_at else None, state=state)


def _select() -> Any:
    return select(T.c.id, T.c.user_id, T.c.label, T.c.created_at, T.c.expires_at,
                  T.c.revoked_at, U.c.username).join(U, U.c.id == T.c.user_id)


async def _refuse(ctx: NodeContext, actor: Principal, target_type: str, target: str) -> None:
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action="access.refused", actor=actor,
                           target_type=target_type, target_id=target, outcome="refused",
                           detail={"code": Code.FORBIDDEN.value})
    raise NodeError(Code.FORBIDDEN, "only an admin may manage another user's tokens")


async def list_tokens(ctx: NodeContext, actor: Principal | None,
                      username: str | None = None) -> list[TokenInfo]:
    """`actor`'s own tokens, or `username`'s (admins, CLI); the CLI with no name: all."""
    if actor is not None and username is not None and username != actor.username \
            and actor.role is not Role.ADMIN:
        await _refuse(ctx, actor, "user", username)
    stmt = _select().order_by(U.c.username, T.c.created_at)
    if username is not None:
        stmt = stmt.where(U.c.username == username)
    elif actor is not None:
        stmt = stmt.where(T.c.user_id == actor.user_id)
    async with ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    if username is not None and not rows:
        async with ctx.db.read() as conn:
            known = (await conn.execute(select(U.c.id).where(U.c.username == username))).first()
        if known is None:
            raise NodeError(Code.NOT_FOUND, "no such user", "user")
    now = ctx.now()
    return [_info(r, now) for r in rows]


async def revoke_token(ctx: NodeContext, actor: Principal | None,
                       token_id: uuid.UUID) -> TokenInfo:
    """Revoke one token: its owner, an admin, or the CLI (`actor` None)."""
    now = ctx.now()
    async with ctx.db.read() as conn:
        row = (await conn.execute(_select().where(T.c.id == token_id))).first()
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such token")
    if actor is not None and row.user_id != actor.user_id and actor.role is not Role.ADMIN:
        await _refuse(ctx, actor, "token", str(token_id))
    if row.revoked_at is None:
        async with ctx.db.write() as conn:
            await conn.execute(update(T).where(T.c.id == token_id, T.c.revoked_at.is_(None))
                               .values(revoked_at=now))
            await audit.append(conn, ts=now, action="token.revoke", actor=actor,
                               target_type="user", target_id=row.user_id,
                               detail={"token": str(token_id)})
        ctx.db.auth_cache.clear()
        async with ctx.db.read() as conn:
            row = (await conn.execute(_select().where(T.c.id == token_id))).one()
    return _info(row, now)
