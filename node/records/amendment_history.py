"""Reading an encounter's amendment history: who, when, which fields (never the values).

Kept apart from `node.records.amendments` (the write) so the encounter read
(`node.records.encounters.get_encounter`) can attach the history without importing the
writer. Callers have already checked and audited the read of the encounter itself.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from node.core.context import NodeContext
from node.core.db import User, table_of
from node.core.schemas import AmendmentOut
from node.core.times import to_dt
from node.records.amendment_db import EncounterAmendment

__all__ = ["AM", "history_of"]

AM = table_of(EncounterAmendment)
_U = table_of(User)


async def history_of(ctx: NodeContext, eid: uuid.UUID) -> list[AmendmentOut]:
    """The amendments of encounter `eid`, oldest first."""
    stmt = (select(AM.c.id, AM.c.amended_by, AM.c.amended_at, AM.c.fields, _U.c.username)
            .join(_U, _U.c.id == AM.c.amended_by)
            .where(AM.c.encounter_id == eid).order_by(AM.c.amended_at, AM.c.id))
    async with ctx.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [AmendmentOut(id=r.id, amended_by=r.amended_by, amended_by_username=r.username,
                         amended_at=to_dt(r.amended_at), fields=r.fields.split(","))
            for r in rows]
