"""Issue 21: the `follow_up_transferred` revision upgrades a database made at the revision
before it (every other head applied, rows in place) on SQLite and PostgreSQL: rows are
kept (follow-ups of each status and their encounters), and the status `transferred` is
accepted afterwards while a value outside the list is still refused.

`0001_node_core` builds the status CHECK from the live vocabulary (its comment says frozen,
the code is not), so a fresh database at the revision before already admits `transferred`.
The schema a pre-issue-21 database really has is rebuilt with this revision's own downgrade
(old CHECK and width; SQLite rebuilds the table; `followup_transfers`, which depends on
this revision, goes with it), with rows in place; then the upgrade to all heads runs."""

from __future__ import annotations

import datetime
import uuid

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.database import make_engine, migrate
from node.core.db import Encounter, FollowUp, User, table_of

REVISION = "follow_up_transferred_0001"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "node:migrations")
    return cfg


async def _downgrade_branch(engine: AsyncEngine) -> None:
    def run(conn: object) -> None:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "follow_up_transferred@-1")

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_follow_up_transferred_upgrades_an_existing_database(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert REVISION in ScriptDirectory.from_config(_config()).get_heads()
        await migrate(engine, "node:migrations")
        await _downgrade_branch(engine)  # the schema as it was before the revision
        u, e, f = table_of(User), table_of(Encounter), table_of(FollowUp)
        uid, fids = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
        async with engine.begin() as conn:
            await conn.execute(insert(u).values(
                id=uid, username="sup", password_hash="x", role="peer_supporter",
                team="main", active=True, created_at=1, updated_at=1))
            for i, (fid, status) in enumerate(zip(fids, ("open", "done"), strict=True)):
                eid = uuid.uuid4()
                await conn.execute(insert(e).values(
                    id=eid, created_by=uid, created_at=1, updated_at=1, occurred_at=1 + i,
                    duration_bucket="15-30m", incident_ref=None, activation_type="self",
                    intervention="one_on_one", recipient_discipline="fire",
                    recipient_category="own_agency", recipient_ref=f"ref{i}",
                    topics=frozenset(), referral=None, notice_given=True,
                    supporter_was_witness=False))
                await conn.execute(insert(f).values(
                    id=fid, encounter_id=eid, owner_id=uid, due_on=datetime.date(2026, 6, 1),
                    status=status, created_at=1, updated_at=1, completed_at=None))
        async with engine.begin() as conn:
            with pytest.raises(IntegrityError):  # not yet a known status
                async with conn.begin_nested():
                    await conn.execute(update(f).where(f.c.id == fids[0]).values(
                        status="transferred"))
        async with engine.connect() as conn:
            before = sorted((await conn.execute(select(f))).all())
            encounters = sorted((await conn.execute(select(e))).all())

        await migrate(engine, "node:migrations")

        async with engine.connect() as conn:
            assert sorted((await conn.execute(select(f))).all()) == before
            assert sorted((await conn.execute(select(e))).all()) == encounters
        async with engine.begin() as conn:
            await conn.execute(update(f).where(f.c.id == fids[0]).values(status="transferred"))
        async with engine.begin() as conn:
            with pytest.raises(IntegrityError):
                async with conn.begin_nested():
                    await conn.execute(text("UPDATE follow_ups SET status = 'moved'"))
        async with engine.connect() as conn:
            rows = dict((await conn.execute(select(f.c.id, f.c.status))).all())
        assert rows == {fids[0]: "transferred", fids[1]: "done"}
    finally:
        await engine.dispose()
