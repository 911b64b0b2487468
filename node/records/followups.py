"""Follow-ups: continuity of care after an encounter.

A follow-up is created with its encounter (due date, owner; `node.records.encounters`). Lists:
"mine" (owned by the caller) or "team" (coordinators: every follow-up of their team), with
`due_only` keeping those due today or earlier. `overdue` is computed against the injected
clock in the node's time zone: open and due before today.

A coordinator reassigns (new owner on their team, optionally a new due date); the owner or a
coordinator of the team completes one as `done` or `handed_off`. Each change is audited in
its own transaction. A follow-up with a consented transfer to another agency still pending
is locked (`transfer_pending`) until that agency accepts or declines or the transfer
expires: completing or reassigning it here would race the other agency's answer.

Owners read their assigned follow-ups even on someone else's encounter:
the follow-up shows only what continuing care needs (due, intervention, discipline,
incident number), not the encounter.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.activation.transfer_db import Transfer, TransferDirection, TransferState
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, FollowUp, User, table_of
from node.core.errors import Code, NodeError
from node.core.schemas import FollowUpOut
from node.core.times import to_dt
from node.core.vocabulary import FollowUpStatus, Role
from node.notify import queue as notify_queue
from node.records.encounters import ASSIGNABLE, effective_status

__all__ = ["complete", "list_follow_ups", "reassign"]

E = table_of(Encounter)
F = table_of(FollowUp)
U = table_of(User)
T = table_of(Transfer)

_SELECT = (
    select(F.c.id, F.c.encounter_id, F.c.owner_id, U.c.username, U.c.team, F.c.due_on,
           F.c.status, F.c.completed_at, E.c.occurred_at, E.c.intervention,
           E.c.recipient_discipline, E.c.incident_ref)
    .select_from(F.join(E, E.c.id == F.c.encounter_id).join(U, U.c.id == F.c.owner_id))
)


def _out(row: Mapping[Any, Any], ctx: NodeContext) -> FollowUpOut:
    return FollowUpOut(
        id=row["id"], encounter_id=row["encounter_id"], owner=row["owner_id"],
        owner_username=row["username"], due=row["due_on"],
        status=effective_status(row["status"], row["due_on"], ctx.today()),
        occurred_at=to_dt(row["occurred_at"]), intervention=row["intervention"],
        recipient_discipline=row["recipient_discipline"], incident_ref=row["incident_ref"],
        completed_at=to_dt(row["completed_at"]) if row["completed_at"] else None,
    )


async def _refuse(ctx: NodeContext, p: Principal, target: str, field: str | None,
                  message: str) -> NodeError:
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action="access.refused", actor=p,
                           target_type="follow_up", target_id=target, outcome="refused",
                           detail={"code": Code.FORBIDDEN.value})
    return NodeError(Code.FORBIDDEN, message, field)


async def list_follow_ups(
    ctx: NodeContext, p: Principal, scope: str = "mine", due_only: bool = False
) -> list[FollowUpOut]:
    if scope == "team":
        if p.role is not Role.COORDINATOR:
            raise await _refuse(ctx, p, "team", "scope", "only coordinators see the team's")
        stmt = _SELECT.where(U.c.team == p.team)
    else:
        stmt = _SELECT.where(F.c.owner_id == p.user_id)
    if due_only:
        stmt = stmt.where(F.c.status == FollowUpStatus.OPEN.value, F.c.due_on <= ctx.today())
    stmt = stmt.order_by(F.c.due_on, F.c.id)
    async with ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [_out(r, ctx) for r in rows]


async def _load(conn: AsyncConnection, fid: uuid.UUID) -> Mapping[Any, Any]:
    row = (await conn.execute(_SELECT.where(F.c.id == fid))).mappings().first()
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such follow-up")
    return row


async def _unlocked(conn: AsyncConnection, fid: uuid.UUID) -> None:
    """Refuse while a transfer of this follow-up waits for the other agency's answer."""
    pending = (await conn.execute(select(T.c.id).where(
        T.c.follow_up_id == fid, T.c.direction == TransferDirection.OUT.value,
        T.c.state == TransferState.PENDING.value).limit(1))).first()
    if pending is not None:
        raise NodeError(Code.TRANSFER_PENDING, "this follow-up is being transferred to another "
                        "agency; wait for their answer")


async def reassign(ctx: NodeContext, p: Principal, fid: uuid.UUID, owner: uuid.UUID,
                   due: Any = None) -> FollowUpOut:
    async with ctx.db.read() as conn:
        row = await _load(conn, fid)
    if p.role is not Role.COORDINATOR or row["team"] != p.team:
        raise await _refuse(ctx, p, str(fid), None, "only your team's coordinator reassigns")
    if row["status"] != FollowUpStatus.OPEN.value:
        raise NodeError(Code.CONFLICT, "this follow-up is already closed")
    now = ctx.now()
    async with ctx.db.write() as conn:
        await _unlocked(conn, fid)
        new = (await conn.execute(
            select(U.c.role, U.c.team, U.c.active).where(U.c.id == owner)
        )).first()
        if new is None or not new.active or new.role not in ASSIGNABLE or new.team != p.team:
            raise NodeError(Code.INVALID_INPUT, "owner: not an active supporter on your team",
                            "owner")
        values: dict[str, Any] = {"owner_id": owner, "updated_at": now}
        if due is not None:
            values["due_on"] = due
        await conn.execute(update(F).where(F.c.id == fid).values(**values))
        await notify_queue.follow_up_closed(conn, fid)  # the new owner is reminded anew
        await audit.append(conn, ts=now, action="follow_up.reassign", actor=p,
                           target_type="follow_up", target_id=fid,
                           detail={"to": str(owner)})
        fresh = await _load(conn, fid)
    return _out(fresh, ctx)


async def complete(ctx: NodeContext, p: Principal, fid: uuid.UUID,
                   outcome: str = "done") -> FollowUpOut:
    async with ctx.db.read() as conn:
        row = await _load(conn, fid)
    mine = row["owner_id"] == p.user_id
    coordinator = p.role is Role.COORDINATOR and row["team"] == p.team
    if not (mine or coordinator):
        raise await _refuse(ctx, p, str(fid), None, "this follow-up is not yours")
    if row["status"] != FollowUpStatus.OPEN.value:
        raise NodeError(Code.CONFLICT, "this follow-up is already closed")
    now = ctx.now()
    status = FollowUpStatus(outcome)
    async with ctx.db.write() as conn:
        await _unlocked(conn, fid)
        await conn.execute(update(F).where(F.c.id == fid, F.c.status == "open").values(
            status=status, completed_at=now, updated_at=now))
        await notify_queue.follow_up_closed(conn, fid)  # no reminder for a closed one
        await audit.append(conn, ts=now, action="follow_up.complete", actor=p,
                           target_type="follow_up", target_id=fid,
                           detail={"outcome": status.value})
        fresh = await _load(conn, fid)
    return _out(fresh, ctx)
