"""Restricted disclosure records (DESIGN section 2): a disclosure under a legal exception
(imminent harm, mandated report, court order, consent) is kept apart from encounters as its
category, its date and whether written notice was given. Nothing else: no person, no
encounter link, no words.

Coordinator-only (the route table refuses other roles) and always audited: creating one,
listing them (with the count) and reading one each write an audit entry, whoever made it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select

from federation.random_ids import new_record_id
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Disclosure, table_of
from node.core.errors import Code, NodeError
from node.core.schemas import DisclosureIn, DisclosureOut
from node.core.times import to_dt

__all__ = ["create_disclosure", "get_disclosure", "list_disclosures"]

D = table_of(Disclosure)


def _out(row: Any) -> DisclosureOut:
    return DisclosureOut(id=row.id, category=row.category, occurred_on=row.occurred_on,
                         notice_given=row.notice_given, team=row.team,
                         created_by=row.created_by, created_at=to_dt(row.created_at))


async def create_disclosure(ctx: NodeContext, p: Principal, data: DisclosureIn) -> DisclosureOut:
    now = ctx.now()
    if data.occurred_on > ctx.today():
        raise NodeError(Code.INVALID_INPUT, "occurred_on: in the future", "occurred_on")
    did = new_record_id()
    row = {"id": did, "category": data.category, "occurred_on": data.occurred_on,
           "notice_given": data.notice_given, "team": p.team, "created_by": p.user_id,
           "created_at": now}
    async with ctx.db.write() as conn:
        await conn.execute(insert(D), [row])
        await audit.append(conn, ts=now, action="disclosure.create", actor=p,
                           target_type="disclosure", target_id=did)
    return DisclosureOut(id=did, category=data.category, occurred_on=data.occurred_on,
                         notice_given=data.notice_given, team=p.team, created_by=p.user_id,
                         created_at=to_dt(now))


async def list_disclosures(ctx: NodeContext, p: Principal) -> list[DisclosureOut]:
    async with ctx.db.write() as conn:
        rows = (await conn.execute(select(D).where(D.c.team == p.team)
                                   .order_by(D.c.occurred_on.desc(), D.c.id))).all()
        await audit.append(conn, ts=ctx.now(), action="disclosure.list", actor=p,
                           target_type="disclosures", target_id=p.team,
                           detail={"count": len(rows)})
    return [_out(r) for r in rows]


async def get_disclosure(ctx: NodeContext, p: Principal, did: uuid.UUID) -> DisclosureOut:
    async with ctx.db.write() as conn:
        row = (await conn.execute(select(D).where(D.c.id == did))).first()
        allowed = row is not None and row.team == p.team
        await audit.append(conn, ts=ctx.now(),
                           action="disclosure.read" if allowed else "access.refused",
                           actor=p, target_type="disclosure", target_id=did,
                           outcome="ok" if allowed else "refused")
    if row is None or not allowed:
        raise NodeError(Code.NOT_FOUND, "no such disclosure on your team")
    return _out(row)
