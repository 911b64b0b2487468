"""Encounter services: log one, read one, list them.

Access (DESIGN section 3): a peer supporter reads only encounters they logged; a coordinator
also reads those of their team (the creator's `team`), and every such read of another
user's record is audited (`encounter.read`, or `encounter.list` with the count). Any refused
read is audited (`access.refused`) before the 403 goes out.

Writing is one transaction: the encounter row, its follow-up row (when a due date is given)
and the `encounter.create` audit entry commit together or not at all. The typed recipient
identifier is put in its canonical form under the agency's `identifier_format`
(`node.core.identifier.unit_key`: placeholders refused) and becomes `recipient_ref` here;
it goes no further.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.random_ids import new_record_id
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, FollowUp, User, table_of
from node.core.errors import Code, NodeError
from node.core.identifier import unit_key
from node.core.schemas import EncounterIn, EncounterOut
from node.core.times import from_dt, local_date, to_dt
from node.core.vocabulary import FollowUpStatus, Role
from node.records.amendment_history import history_of
from node.records.encounter_json import encounter_json

__all__ = [
    "FUTURE_SLACK_MS",
    "create_encounter",
    "create_encounter_json",
    "effective_status",
    "get_encounter",
    "list_encounters",
    "out_of",
]

E = table_of(Encounter)
F = table_of(FollowUp)
U = table_of(User)
FUTURE_SLACK_MS = 10 * 60_000  # clocks on phones drift; an hour ahead is a mistake
ASSIGNABLE = (Role.PEER_SUPPORTER.value, Role.COORDINATOR.value)

_COLUMNS: list[Any] = [
    E, F.c.due_on, F.c.owner_id, F.c.status.label("fu_status"),
]


def effective_status(stored: str | None, due: Any, today: Any) -> FollowUpStatus:
    """`none` without a follow-up; `overdue` when open and past due; else the stored one."""
    if stored is None:
        return FollowUpStatus.NONE
    status = FollowUpStatus(stored)
    if status is FollowUpStatus.OPEN and due is not None and due < today:
        return FollowUpStatus.OVERDUE
    return status


def _out(row: Mapping[str, Any], ctx: NodeContext) -> EncounterOut:
    return out_of(row, effective_status(row["fu_status"], row["due_on"], ctx.today()))


def out_of(row: Mapping[str, Any], follow_up_status: FollowUpStatus) -> EncounterOut:
    """The model of an encounter row joined with its follow-up (`due_on`, `owner_id`)."""
    return EncounterOut(
        id=row["id"], created_by=row["created_by"], created_at=to_dt(row["created_at"]),
        updated_at=to_dt(row["updated_at"]), occurred_at=to_dt(row["occurred_at"]),
        duration_bucket=row["duration_bucket"], incident_ref=row["incident_ref"],
        activation_type=row["activation_type"], intervention=row["intervention"],
        recipient_discipline=row["recipient_discipline"],
        recipient_category=row["recipient_category"], recipient_ref=row["recipient_ref"],
        topics=sorted(row["topics"]), referral=row["referral"],
        follow_up_due=row["due_on"], follow_up_owner=row["owner_id"],
        follow_up_status=follow_up_status,
        notice_given=row["notice_given"], supporter_was_witness=row["supporter_was_witness"],
    )


async def _check_owner(conn: AsyncConnection, p: Principal, owner: uuid.UUID) -> None:
    row = (await conn.execute(
        select(U.c.role, U.c.team, U.c.active).where(U.c.id == owner)
    )).first()
    if row is None or not row.active or row.role not in ASSIGNABLE or row.team != p.team:
        raise NodeError(Code.INVALID_INPUT, "follow_up_owner: not an active supporter on your "
                        "team", "follow_up_owner")


async def create_encounter(ctx: NodeContext, p: Principal, data: EncounterIn) -> EncounterOut:
    row, fu = await _write(ctx, p, data)
    row.update(due_on=fu["due_on"] if fu else None, owner_id=fu["owner_id"] if fu else None,
               fu_status=FollowUpStatus.OPEN.value if fu else None)
    return _out(row, ctx)


async def create_encounter_json(ctx: NodeContext, p: Principal, data: EncounterIn) -> bytes:
    """`create_encounter`'s answer as JSON bytes, without the model (`encounter_json`)."""
    row, fu = await _write(ctx, p, data)
    due = fu["due_on"] if fu else None
    return encounter_json(
        row, topics=row["topics"], follow_up_due=due,
        follow_up_owner=fu["owner_id"] if fu else None,
        follow_up_status=effective_status(FollowUpStatus.OPEN.value if fu else None, due,
                                          ctx.today()))


async def _write(ctx: NodeContext, p: Principal,
                 data: EncounterIn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Check and write one encounter (its row, follow-up and audit entry, one
    transaction); the row and the follow-up as inserted."""
    now = ctx.now()
    occurred = from_dt(data.occurred_at)
    if occurred > now + FUTURE_SLACK_MS:
        raise NodeError(Code.INVALID_INPUT, "occurred_at: in the future", "occurred_at")
    owner = data.follow_up_owner
    if owner is not None and data.follow_up_due is None:
        raise NodeError(Code.INVALID_INPUT, "follow_up_due: give a due date with an owner",
                        "follow_up_due")
    if data.follow_up_due is not None:
        owner = owner or p.user_id
        if data.follow_up_due < local_date(occurred, ctx.zone):
            raise NodeError(Code.INVALID_INPUT, "follow_up_due: before the encounter",
                            "follow_up_due")
        if data.supporter_was_witness and owner == p.user_id:
            raise NodeError(Code.INVALID_INPUT, "follow_up_owner: you were a witness; assign "
                            "the follow-up to another supporter", "follow_up_owner")
    eid = new_record_id()
    row: dict[str, Any] = {
        "id": eid, "created_by": p.user_id, "created_at": now, "updated_at": now,
        "occurred_at": occurred, "duration_bucket": data.duration_bucket,
        "incident_ref": data.incident_ref, "activation_type": data.activation_type,
        "intervention": data.intervention, "recipient_discipline": data.recipient_discipline,
        "recipient_category": data.recipient_category,
        "recipient_ref": ctx.pseudonyms.ref(
            unit_key(data.recipient, ctx.settings.identifier_format)),
        "topics": frozenset(data.topics), "referral": data.referral,
        "notice_given": data.notice_given, "supporter_was_witness": data.supporter_was_witness,
    }
    fu: dict[str, Any] | None = None
    rows: list[tuple[Table, dict[str, Any]]] = [(E, row)]
    if data.follow_up_due is not None and owner is not None:
        fu = {"id": new_record_id(), "encounter_id": eid, "owner_id": owner,
              "due_on": data.follow_up_due, "status": FollowUpStatus.OPEN,
              "created_at": now, "updated_at": now, "completed_at": None}
        rows.append((F, fu))
    entry: dict[str, Any] = {"ts": now, "action": "encounter.create", "actor": p,
                             "target_type": "encounter", "target_id": eid}
    if owner is not None and owner != p.user_id:
        async with ctx.db.write() as conn:
            await _check_owner(conn, p, owner)
            await audit.append(conn, rows=rows, **entry)
    else:
        await audit.record(ctx.db, rows=rows, **entry)
    return row, fu


async def get_encounter(ctx: NodeContext, p: Principal, eid: uuid.UUID) -> EncounterOut:
    stmt = (select(*_COLUMNS, U.c.team.label("creator_team"))
            .select_from(E.outerjoin(F, F.c.encounter_id == E.c.id)
                         .join(U, U.c.id == E.c.created_by))
            .where(E.c.id == eid))
    async with ctx.db.read() as conn:
        row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such encounter")
    if row["created_by"] == p.user_id:
        return await _with_history(ctx, row)
    allowed = p.role is Role.COORDINATOR and row["creator_team"] == p.team
    async with ctx.db.write() as conn:
        await audit.append(
            conn, ts=ctx.now(), action="encounter.read" if allowed else "access.refused",
            actor=p, target_type="encounter", target_id=eid,
            outcome="ok" if allowed else "refused",
            detail={} if allowed else {"code": Code.FORBIDDEN.value},
        )
    if not allowed:
        raise NodeError(Code.FORBIDDEN, "this record is not yours")
    return await _with_history(ctx, row)


async def _with_history(ctx: NodeContext, row: Mapping[str, Any]) -> EncounterOut:
    """One encounter's read shows its amendments too (`node.records.amendments`)."""
    return _out(row, ctx).model_copy(update={"amendments": await history_of(ctx, row["id"])})


async def list_encounters(
    ctx: NodeContext, p: Principal, scope: str = "mine", limit: int = 50, offset: int = 0,
    where: Sequence[Any] = (),
) -> list[EncounterOut]:
    """`where`: filters (`node.records.encounter_paging.encounter_where`)."""
    base = (select(*_COLUMNS)
            .select_from(E.outerjoin(F, F.c.encounter_id == E.c.id)))
    if scope == "team":
        if p.role is not Role.COORDINATOR:
            async with ctx.db.write() as conn:
                await audit.append(conn, ts=ctx.now(), action="access.refused", actor=p,
                                   target_type="encounters", target_id="team",
                                   outcome="refused", detail={"code": Code.FORBIDDEN.value})
            raise NodeError(Code.FORBIDDEN, "only coordinators see the team's records", "scope")
        stmt = base.join(U, and_(U.c.id == E.c.created_by, U.c.team == p.team))
    else:
        stmt = base.where(E.c.created_by == p.user_id)
    stmt = stmt.where(*where).order_by(E.c.occurred_at.desc(), E.c.id).limit(limit)
    stmt = stmt.offset(offset)
    async with ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    items = [_out(r, ctx) for r in rows]
    others = sum(1 for i in items if i.created_by != p.user_id)
    if others:
        async with ctx.db.write() as conn:
            await audit.append(conn, ts=ctx.now(), action="encounter.list", actor=p,
                               target_type="encounters", target_id=scope,
                               detail={"others": others})
    return items
