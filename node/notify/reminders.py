"""Follow-up reminders: queue `follow_up_due` / `follow_up_overdue` as the clock passes.

A follow-up falls due on its due date and becomes overdue the day after (the node's time
zone, the injected clock, as `node.records.followups` computes `overdue`). There is no
write to hook at that moment, so the dispatcher scans once a minute: every open follow-up
due today or before gets its reminder queued, in one transaction with the scan. The
reminder's key names the follow-up, its due date, the stage and the owner, so a scan
queues each reminder once; a follow-up first seen when already overdue (the node was
down) gets only the overdue one; a new due date or owner (reassignment) is a new reminder.
Completing or reassigning a follow-up drops its reminders not yet sent
(`node.notify.queue.follow_up_closed`, called from `node.records.followups`).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from node.core.db import Database, FollowUp, table_of
from node.core.vocabulary import FollowUpStatus
from node.notify.db import EV
from node.notify.kinds import NotifyKind
from node.notify.queue import follow_up_reminder

__all__ = ["SCAN_EVERY_MS", "queue_reminders"]

F = table_of(FollowUp)
SCAN_EVERY_MS = 60_000
_CHUNK = 400
_PER_WRITE = 100


async def queue_reminders(db: Database, now: int, today: date) -> int:
    """Queue what fell due; answers how many deliveries were queued."""
    q = (select(F.c.id, F.c.owner_id, F.c.due_on)
         .where(F.c.status == FollowUpStatus.OPEN.value, F.c.due_on <= today)
         .order_by(F.c.due_on, F.c.id))
    async with db.read() as conn:
        rows = (await conn.execute(q)).all()
    wanted = {}
    for r in rows:
        kind = NotifyKind.FOLLOW_UP_DUE if r.due_on == today else NotifyKind.FOLLOW_UP_OVERDUE
        key = f"fu:{r.id}:{r.due_on.isoformat()}:{kind.value}:{r.owner_id}"
        wanted[key] = (kind, r)
    if not wanted:
        return 0
    keys = list(wanted)
    seen: set[str] = set()
    async with db.read() as conn:
        for i in range(0, len(keys), _CHUNK):
            part = keys[i:i + _CHUNK]
            seen.update((await conn.execute(select(EV.c.key).where(EV.c.key.in_(part))))
                        .scalars().all())
    todo = [wanted[k] for k in keys if k not in seen]
    if not todo:
        return 0
    n = 0
    for i in range(0, len(todo), _PER_WRITE):  # short write transactions on a big backlog
        try:
            async with db.write() as conn:
                added = 0
                for kind, r in todo[i:i + _PER_WRITE]:
                    added += await follow_up_reminder(conn, now, kind, r.id, r.due_on,
                                                     r.owner_id)
        except IntegrityError:
            continue  # another process queued these first; the next scan sees them
        n += added
    return n
