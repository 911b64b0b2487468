"""The users list, paged with counts and filtered by role, activity and name.

Why: an agency with a few hundred supporters got one unbroken list on the admin page and
the whole table from `GET /api/v1/users`. Both now read one page in one fixed order (by
username) with the total that matches the filters, so "1-50 of 212" and the pager agree
with what a filter shows. `q` matches part of a username (case-insensitive; `%` and `_`
are literal), `role` one role, `active` active or inactive users.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from node.accounts.users import user_out
from node.core.context import NodeContext
from node.core.db import User, table_of
from node.core.schemas import UserOut
from node.core.vocabulary import Role

__all__ = ["UserFilter", "UsersPageQuery", "count_users", "filter_of", "get_user",
           "page_users"]

U = table_of(User)
SEARCH_PATTERN = r"^[a-z0-9._-]{1,40}$"  # what a username may hold


@dataclass(frozen=True)
class UserFilter:
    role: Role | None = None
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


class UsersPageQuery(BaseModel):
    """The users page's query string (`?page=2&role=admin&active=yes&q=sam`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    page: int = Field(default=1, ge=1, le=1_000_000)
    role: Role | None = None
    active: Literal["yes", "no"] | None = None
    q: str | None = Field(default=None, pattern=SEARCH_PATTERN)

    @property
    def filter(self) -> UserFilter:
        return filter_of(self.role, None if self.active is None else self.active == "yes",
                         self.q)


def filter_of(role: Role | None, active: bool | None, q: str | None) -> UserFilter:
    return UserFilter(role, active, q.strip().casefold() if q else None)


async def count_users(ctx: NodeContext, f: UserFilter) -> int:
    async with ctx.db.read() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(U).where(*f.where()))).scalar_one())


async def page_users(ctx: NodeContext, f: UserFilter, offset: int, limit: int) -> list[UserOut]:
    async with ctx.db.read() as conn:
        rows = (await conn.execute(select(U).where(*f.where()).order_by(U.c.username)
                                   .offset(offset).limit(limit))).all()
    return [user_out(r) for r in rows]



async def get_user(ctx: NodeContext, uid: uuid.UUID) -> UserOut | None:
    async with ctx.db.read() as conn:
        row = (await conn.execute(select(U).where(U.c.id == uid))).first()
    return None if row is None else user_out(row)
