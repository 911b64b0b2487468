"""The agency report for leadership: counts only, never a record row.

Per calendar month (node time zone) of the last `months` months: encounters, counts by
intervention, by recipient discipline and by referral (`none` when there was none), and
follow-ups (total, done, done on time, handed off, still open, overdue). Plus the totals.

The query reads only the enum columns and times it counts (no recipient_ref, no incident
number, no creator) and aggregates in the process, which keeps one code path for SQLite
and PostgreSQL and the month boundaries in the node's time zone.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select

from node.core.context import NodeContext
from node.core.db import Encounter, FollowUp, table_of
from node.core.schemas import FollowUpCounts, MonthReport, ReportOut
from node.core.times import from_dt, local_date, month_of
from node.core.vocabulary import FollowUpStatus, Intervention, RecipientDiscipline
from node.records.encounters import effective_status

__all__ = ["agency_report", "month_keys"]

E = table_of(Encounter)
F = table_of(FollowUp)


def month_keys(today: Any, months: int) -> list[str]:
    y, m = today.year, today.month
    keys: list[str] = []
    for _ in range(months):
        keys.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(keys))


class _Acc:
    def __init__(self, month: str) -> None:
        self.month = month
        self.n = 0
        self.intervention: Counter[str] = Counter()
        self.discipline: Counter[str] = Counter()
        self.referral: Counter[str] = Counter()
        self.fu: Counter[str] = Counter()

    def out(self) -> MonthReport:
        return MonthReport(
            month=self.month, encounters=self.n,
            by_intervention={Intervention(i): self.intervention[i.value] for i in Intervention},
            by_discipline={
                RecipientDiscipline(d): self.discipline[d.value] for d in RecipientDiscipline
            },
            by_referral=dict(sorted(self.referral.items())),
            follow_ups=FollowUpCounts(
                total=self.fu["total"], done=self.fu["done"],
                done_on_time=self.fu["done_on_time"], handed_off=self.fu["handed_off"],
                open=self.fu["open"], overdue=self.fu["overdue"],
            ),
        )


async def agency_report(ctx: NodeContext, months: int = 12) -> ReportOut:
    today = ctx.today()
    keys = month_keys(today, months)
    start = datetime(int(keys[0][:4]), int(keys[0][5:]), 1, tzinfo=ctx.zone)
    stmt = (select(E.c.occurred_at, E.c.intervention, E.c.recipient_discipline, E.c.referral,
                   F.c.status, F.c.due_on, F.c.completed_at)
            .select_from(E.outerjoin(F, F.c.encounter_id == E.c.id))
            .where(E.c.occurred_at >= from_dt(start)))
    async with ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    accs = {k: _Acc(k) for k in keys}
    total = _Acc("total")
    for r in rows:
        acc = accs.get(month_of(r.occurred_at, ctx.zone))
        if acc is None:
            continue
        for a in (acc, total):
            a.n += 1
            a.intervention[r.intervention] += 1
            a.discipline[r.recipient_discipline] += 1
            a.referral[r.referral or "none"] += 1
            if r.status is not None:
                status = effective_status(r.status, r.due_on, today)
                a.fu["total"] += 1
                a.fu[status.value] += 1
                if status is FollowUpStatus.DONE and r.completed_at is not None and (
                    local_date(r.completed_at, ctx.zone) <= r.due_on
                ):
                    a.fu["done_on_time"] += 1
    return ReportOut(months=[accs[k].out() for k in keys], totals=total.out())
