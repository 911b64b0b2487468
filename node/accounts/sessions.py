"""A user's own browser sessions: listed (created, last seen, address) and ended one by one.

Why: a supporter who logged in on a station computer and walked away, or who suspects
someone else used their login, needs to see where they are logged in and end it without
an admin. Only one's own sessions are ever listed or ended (`GET /api/v1/sessions`,
`DELETE /api/v1/sessions/{id}`, the `/account` page); another user's session is
indistinguishable from one that does not exist (404 `not_found`).

A session row is keyed by the SHA-256 of its cookie; the id shown here is a UUID derived
from that key by another hash (`handle_of`), so a listed id can end the session but never
find or forge its cookie. `last_seen_at` is written by `touch` at most once per
`SEEN_EVERY_MS` per session and process (a write per request would cost every page view a
write lock on SQLite); best effort: a failed touch never fails the request. Ending a session
is audited (`session.end`).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import datetime

from pydantic import Field
from sqlalchemy import delete, select, update

from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import WebSession, table_of
from node.core.errors import Code, NodeError
from node.core.paging import Cursor, NextCursor
from node.core.schemas import Request, Response
from node.core.times import to_dt

__all__ = ["SEEN_EVERY_MS", "SessionInfo", "SessionList", "SessionQuery", "end_session",
           "handle_of", "list_sessions", "touch"]

S = table_of(WebSession)
SEEN_EVERY_MS = 5 * 60_000
_SEEN_MAX = 10_000


class SessionQuery(Request):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: Cursor = None


class SessionInfo(Response):
    id: uuid.UUID = Field(description="Names the session for ending it; not its cookie")
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime
    address: str | None = Field(description="The client address it logged in from")
    current: bool = Field(description="The session making this request")


class SessionList(Response):
    items: list[SessionInfo]
    next_cursor: NextCursor = None


def handle_of(session_id: str) -> uuid.UUID:
    digest = hashlib.sha256(b"peernet/v1/session-handle\0" + session_id.encode()).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


async def list_sessions(ctx: NodeContext, p: Principal) -> list[SessionInfo]:
    """The caller's unexpired sessions, most recently used first."""
    now = ctx.now()
    async with ctx.db.read() as conn:
        rows = (await conn.execute(select(S).where(
            S.c.user_id == p.user_id, S.c.expires_at > now))).all()
    rows = sorted(rows, key=lambda r: (-(r.last_seen_at or r.created_at), r.id))
    return [SessionInfo(id=handle_of(r.id), created_at=to_dt(r.created_at),
                        last_seen_at=to_dt(r.last_seen_at) if r.last_seen_at else None,
                        expires_at=to_dt(r.expires_at), address=r.address,
                        current=r.id == p.session_id) for r in rows]


async def end_session(ctx: NodeContext, p: Principal, handle: uuid.UUID) -> SessionInfo:
    """End one of the caller's own sessions (possibly the current one); audited."""
    mine = {s.id: s for s in await list_sessions(ctx, p)}
    if handle not in mine:
        raise NodeError(Code.NOT_FOUND, "no such session")
    async with ctx.db.read() as conn:
        ids = (await conn.execute(select(S.c.id).where(S.c.user_id == p.user_id))
               ).scalars().all()
    sid = next((i for i in ids if handle_of(i) == handle), None)
    if sid is None:  # ended meanwhile
        raise NodeError(Code.NOT_FOUND, "no such session")
    async with ctx.db.write() as conn:
        await conn.execute(delete(S).where(S.c.id == sid, S.c.user_id == p.user_id))
        await audit.append(conn, ts=ctx.now(), action="session.end", actor=p,
                           target_type="user", target_id=p.user_id,
                           detail={"session": str(handle), "current": sid == p.session_id})
    return mine[handle]


async def touch(ctx: NodeContext, seen: dict[str, int], session_id: str) -> None:
    """Note that the session was used now (at most once per `SEEN_EVERY_MS`)."""
    now = ctx.now()
    if seen.get(session_id, -SEEN_EVERY_MS) > now - SEEN_EVERY_MS:
        return
    if len(seen) > _SEEN_MAX:
        seen.clear()
    seen[session_id] = now
    with contextlib.suppress(Exception):  # best effort: never fail the request for this
        async with ctx.db.write() as conn:
            await conn.execute(update(S).where(S.c.id == session_id).values(last_seen_at=now))
