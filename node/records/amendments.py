"""Correcting a mistaken encounter: an audited amendment, never an edit in the dark.

Who: the supporter who logged the encounter, or a coordinator of that supporter's team
(the creator's current `team`, as for reads). Anyone else is refused `forbidden` and the
refusal is audited (`access.refused`, detail `{"code": "forbidden", "op": "amend"}`);
admins and auditors are stopped by the route table. Nothing of the record changes.

What: the fields of `EncounterIn` except the follow-up's (`node.records.amendment_models`),
under the same vocabularies and the same checks as logging one: `occurred_at` at most
`FUTURE_SLACK_MS` ahead of the clock and not after the follow-up's due date; the recipient
typed again goes through the agency's identifier format (placeholders refused) and becomes
a new `recipient_ref`; a supporter who owns the open follow-up cannot become a witness
without a reassignment first. A body that changes nothing is refused `invalid_input`.

How: one write transaction holds the encounter row (`FOR UPDATE` on PostgreSQL, the
single writer on SQLite), updates it, inserts an `encounter_amendments` row with the old and
new values of the changed fields, and appends `encounter.amend` to the audit chain with
`{"amendment", "fields", "digest"}` (`node.records.amendment_db`: the digest binds the kept
original values to the chain without revealing them to the auditor). The original
`encounter.create` entry stays where it is; nothing is deleted, and both the encounter and
its amendments go only with the retention purge (`ON DELETE CASCADE`). Reading an encounter
shows the current values and the history (who, when, which fields); values and what was
typed are never logged.

Privacy releases (DESIGN section 7): a release counts records as they stood when it was
recorded. Its noisy body is stored in the ledger and re-sent as the same bytes; an
amendment never redraws, re-sends or re-charges a release, and a month already released is
not released again (`month_already_sent`). An amendment before a month's release is counted
by that release; one after it shows only in the node's own views and report. Moving
`occurred_at` into or out of a released month changes no released figure. A changed
`recipient` changes the unit (`recipient_ref`) only for later releases.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import date
from enum import Enum
from typing import Any, cast

from sqlalchemy import func, select, update

from federation.random_ids import new_record_id
from node.core import audit
from node.core.access import Principal
from node.core.context import NodeContext
from node.core.db import Encounter, FollowUp, User, table_of
from node.core.errors import Code, NodeError
from node.core.identifier import unit_key
from node.core.times import from_dt, local_date, to_dt
from node.core.vocabulary import FollowUpStatus, Role, Topic
from node.records.amendment_history import AM, history_of
from node.records.amendment_models import AmendmentResult, EncounterAmendIn
from node.records.encounters import _COLUMNS, FUTURE_SLACK_MS, _out
from protocol.canonical import canonical_bytes
from protocol.encoding import b64u, sha256_b64u

__all__ = ["amend_encounter", "amendment_digest", "may_amend"]

E = table_of(Encounter)
F = table_of(FollowUp)
U = table_of(User)
_COLUMN_OF = {"recipient": "recipient_ref"}


def may_amend(p: Principal, creator: uuid.UUID, creator_team: str) -> bool:
    return creator == p.user_id or (p.role is Role.COORDINATOR and creator_team == p.team)


def amendment_digest(aid: uuid.UUID | str, nonce: str, old: str, new: str) -> str:
    """What the audit entry holds of an amendment's values (see `amendment_db`)."""
    return sha256_b64u(canonical_bytes({"id": str(aid), "nonce": nonce, "old": old,
                                        "new": new}))


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return value


def _stored(ctx: NodeContext, given: Mapping[str, Any]) -> dict[str, Any]:
    """The column values the given fields become (the recipient as its pseudonym)."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name == "occurred_at":
            value = from_dt(value)
        elif name == "recipient":
            value = ctx.pseudonyms.ref(unit_key(value, ctx.settings.identifier_format))
        elif name == "topics":
            value = frozenset(Topic(t) for t in value)
        out[_COLUMN_OF.get(name, name)] = value
    return out


async def _check_access(ctx: NodeContext, p: Principal, eid: uuid.UUID) -> None:
    stmt = (select(E.c.created_by, U.c.team).join(U, U.c.id == E.c.created_by)
            .where(E.c.id == eid))
    async with ctx.db.read() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise NodeError(Code.NOT_FOUND, "no such encounter")
    if may_amend(p, row.created_by, row.team):
        return
    async with ctx.db.write() as conn:
        await audit.append(conn, ts=ctx.now(), action="access.refused", actor=p,
                           target_type="encounter", target_id=eid, outcome="refused",
                           detail={"code": Code.FORBIDDEN.value, "op": "amend"})
    raise NodeError(Code.FORBIDDEN, "only the supporter who logged this encounter, or their "
                    "coordinator, may amend it")


def _cross_checks(cur: Mapping[Any, Any], new: Mapping[str, Any], ctx: NodeContext) -> None:
    occurred = new.get("occurred_at", cur["occurred_at"])
    due: date | None = cur["due_on"]
    if "occurred_at" in new and due is not None and local_date(occurred, ctx.zone) > due:
        raise NodeError(Code.INVALID_INPUT, "occurred_at: after the follow-up's due date; "
                        "change the due date first", "occurred_at")
    if (new.get("supporter_was_witness") and cur["fu_status"] == FollowUpStatus.OPEN.value
            and cur["owner_id"] == cur["created_by"]):
        raise NodeError(Code.INVALID_INPUT, "supporter_was_witness: the witness owns the "
                        "open follow-up; reassign it to another supporter first",
                        "supporter_was_witness")


async def amend_encounter(ctx: NodeContext, p: Principal, eid: uuid.UUID,
                          data: EncounterAmendIn) -> AmendmentResult:
    given = data.given()
    if not given:
        raise NodeError(Code.INVALID_INPUT, "nothing to amend: send at least one field")
    await _check_access(ctx, p, eid)
    now = ctx.now()
    if "occurred_at" in given and from_dt(given["occurred_at"]) > now + FUTURE_SLACK_MS:
        raise NodeError(Code.INVALID_INPUT, "occurred_at: in the future", "occurred_at")
    new = _stored(ctx, given)
    stmt = (select(*_COLUMNS).select_from(E.outerjoin(F, F.c.encounter_id == E.c.id))
            .where(E.c.id == eid).with_for_update(of=E))
    aid = new_record_id()
    async with ctx.db.write() as conn:
        cur = (await conn.execute(stmt)).mappings().first()
        if cur is None:
            raise NodeError(Code.NOT_FOUND, "no such encounter")
        changed = sorted(k for k, v in new.items() if _plain(v) != _plain(cur[k]))
        if not changed:
            raise NodeError(Code.INVALID_INPUT, "nothing to amend: every value sent is the "
                            "one already stored")
        _cross_checks(cur, new, ctx)
        names = sorted(n for n in given if _COLUMN_OF.get(n, n) in changed)
        old_text = canonical_bytes({c: _plain(cur[c]) for c in changed}).decode()
        new_text = canonical_bytes({c: _plain(new[c]) for c in changed}).decode()
        nonce = b64u(secrets.token_bytes(16))
        # Strictly increasing per encounter, so the history's order is the chain's.
        last = (await conn.execute(select(func.max(AM.c.amended_at))
                                   .where(AM.c.encounter_id == eid))).scalar()
        stamp = now if last is None or last < now else last + 1
        await conn.execute(update(E).where(E.c.id == eid)
                           .values(updated_at=now, **{c: new[c] for c in changed}))
        await audit.append(
            conn, ts=now, action="encounter.amend", actor=p, target_type="encounter",
            target_id=eid, rows=[(AM, {
                "id": aid, "encounter_id": eid, "amended_by": p.user_id, "amended_at": stamp,
                "fields": ",".join(names), "old_values": old_text, "new_values": new_text,
                "nonce": nonce})],
            detail={"amendment": str(aid), "fields": names,
                    "digest": amendment_digest(aid, nonce, old_text, new_text)})
        fresh = (await conn.execute(
            select(*_COLUMNS).select_from(E.outerjoin(F, F.c.encounter_id == E.c.id))
            .where(E.c.id == eid))).mappings().one()
    history = await history_of(ctx, eid)
    out = _out(cast(Mapping[str, Any], fresh), ctx).model_copy(update={"amendments": history})
    return AmendmentResult(encounter=out, amended_fields=names, amended_at=to_dt(stamp))
