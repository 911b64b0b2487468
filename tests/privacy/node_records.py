"""Fixture factory: a migrated node database with synthetic encounters (no real records)."""

from __future__ import annotations

import random
import uuid
from datetime import date

from sqlalchemy import insert

from federation.database import make_engine, migrate
from node.core.db import Database, Encounter, FollowUp, User
from node.core.vocabulary import (
    ActivationType,
    DurationBucket,
    FollowUpStatus,
    Intervention,
    RecipientCategory,
    RecipientDiscipline,
    Referral,
    Role,
    Topic,
)
from node.privacy.release import month_bounds_ms


async def make_node_db(url: str) -> Database:
    db = Database(make_engine(url))
    await migrate(db.engine, "node:migrations")
    return db


async def add_encounters(
    db: Database, month: str, n: int, people: int, seed: int = 0
) -> None:
    """`n` encounters of `people` responders in `month`, some with referrals and follow-ups."""
    rng = random.Random(seed)
    start, end = month_bounds_ms(month)
    user_id = uuid.UUID(int=rng.getrandbits(128))
    encs: list[dict[str, object]] = []
    fus: list[dict[str, object]] = []
    for i in range(n):
        eid = uuid.UUID(int=rng.getrandbits(128))
        at = rng.randrange(start, end)
        encs.append({
            "id": eid, "created_by": user_id, "created_at": at, "updated_at": at,
            "occurred_at": at, "duration_bucket": rng.choice(list(DurationBucket)),
            "incident_ref": None, "activation_type": rng.choice(list(ActivationType)),
            "intervention": rng.choice(list(Intervention)),
            "recipient_discipline": rng.choice(list(RecipientDiscipline)),
            "recipient_category": RecipientCategory.OWN_AGENCY,
            "recipient_ref": f"ref{rng.randrange(people):08d}".ljust(43, "x"),
            "topics": frozenset({Topic.WORK_STRESS}),
            "referral": rng.choice([None, None, None, *list(Referral)]),
            "notice_given": True, "supporter_was_witness": False,
        })
        if i % 2 == 0:
            done = rng.random() < 0.7
            fus.append({
                "id": uuid.UUID(int=rng.getrandbits(128)), "encounter_id": eid,
                "owner_id": user_id, "due_on": date(int(month[:4]), int(month[5:]), 20),
                "status": FollowUpStatus.DONE if done else FollowUpStatus.OPEN,
                "created_at": at, "updated_at": at, "completed_at": at if done else None,
            })
    async with db.write() as conn:
        existing = await conn.scalar(User.__table__.select().where(User.id == user_id))
        if existing is None:
            await conn.execute(insert(User).values(
                id=user_id, username=f"u{seed}-{user_id.hex[:8]}", password_hash="x",
                role=Role.PEER_SUPPORTER, team="main", active=True, created_at=0,
                updated_at=0,
            ))
        for i in range(0, len(encs), 500):
            await conn.execute(insert(Encounter), encs[i : i + 500])
        for i in range(0, len(fus), 500):
            await conn.execute(insert(FollowUp), fus[i : i + 500])
