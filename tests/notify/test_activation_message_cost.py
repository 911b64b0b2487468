"""An inbound activation message queues its notifications with one lookup statement (issue 16
item 2): `node.notify.queue.activation_message` runs inside the inbox's shared transaction
once per message, so its recipients, the "activation known here" and the "not queued
before" checks are one prebuilt statement; nobody to tell, an unknown activation or a
repeat write nothing more. Counted with the engine's own statement hook on both engines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from federation.database import make_engine, migrate
from node.activation.db import Activation
from node.core.db import Database, User, table_of
from node.notify import queue
from node.notify.db import EP, EV, PR, D

ACT = table_of(Activation)
U = table_of(User)
AID = "01J0000000000000000000000A"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    engine = make_engine(db_url)
    await migrate(engine, "node:migrations")
    database = Database(engine)
    yield database
    await database.dispose()


async def _setup(db: Database) -> dict[str, uuid.UUID]:
    ids = {k: uuid.uuid4() for k in ("coord", "off", "sup", "ep_on", "ep_other")}
    user = {"password_hash": "x", "team": "main", "created_at": 1, "updated_at": 1,
            "must_change_password": False}
    async with db.write() as conn:
        await conn.execute(sa.insert(U), [
            {"id": ids["coord"], "username": "coord", "role": "coordinator", "active": True,
             **user},
            {"id": ids["off"], "username": "off", "role": "coordinator", "active": False,
             **user},
            {"id": ids["sup"], "username": "sup", "role": "peer_supporter", "active": True,
             **user}])
        pref = {"digest": False, "urgent_in_quiet": False, "updated_at": 1,
                "webhook_url": "https://hooks.example/x", "email": "c@example.org"}
        await conn.execute(sa.insert(PR), [
            {"user_id": ids[k], "channels": "email,webhook", **pref}
            for k in ("coord", "off", "sup")])
        await conn.execute(sa.insert(EP), [
            {"id": ids["ep_on"], "label": "cad", "channel": "webhook", "target": "https://c/x",
             "kinds": "activation_update,activation_request", "active": True, "created_at": 1},
            {"id": ids["ep_other"], "label": "other", "channel": "webhook",
             "target": "https://c/y", "kinds": "follow_up_due", "active": True,
             "created_at": 1}])
        await conn.execute(sa.insert(ACT), [{
            "key": uuid.uuid4(), "activation_id": AID, "requester": "agency-1", "side": "out",
            "own_state": "requested", "request": "{}", "incident_ref": "I", "incident_type": "t",
            "event_ts": 1, "expires_ts": 2, "peers_needed": 1, "affected_total": 1,
            "created_at": 1, "updated_at": 1}])
    return ids


async def _counted(db: Database, msg_type: str, msg_id: str, aid: str) -> int:
    """Statements `activation_message` ran, in one write transaction."""
    seen: list[str] = []

    def hook(*args: Any) -> None:
        seen.append(args[2])

    sync = db.write_engine.sync_engine
    event.listen(sync, "before_cursor_execute", hook)
    try:
        async with db.write() as conn:
            n0 = len(seen)
            await queue.activation_message(conn, 5, msg_type, msg_id, aid)
            n = len(seen) - n0
    finally:
        event.remove(sync, "before_cursor_execute", hook)
    return n


async def _deliveries(db: Database) -> set[tuple[str, str, str]]:
    async with db.read() as conn:
        return {(r.event_key, r.recipient, r.channel) for r in await conn.execute(
            sa.select(D.c.event_key, D.c.recipient, D.c.channel))}


async def test_an_activation_message_queues_its_recipients_with_one_lookup(
        db: Database) -> None:
    ids = await _setup(db)
    n = await _counted(db, "activation_offer", "01J00000000000000000000M01", AID)
    assert n <= 3, n  # one lookup, the event row, the deliveries (it was six)
    assert await _deliveries(db) == {
        ("msg:01J00000000000000000000M01", f"user:{ids['coord']}", "email"),
        ("msg:01J00000000000000000000M01", f"user:{ids['coord']}", "webhook"),
        ("msg:01J00000000000000000000M01", f"endpoint:{ids['ep_on']}", "webhook"),
    }
    # The same message again (redelivered): one lookup, nothing more queued.
    assert await _counted(db, "activation_offer", "01J00000000000000000000M01", AID) <= 1
    assert len(await _deliveries(db)) == 3


async def test_nothing_to_queue_costs_one_statement_and_writes_nothing(db: Database) -> None:
    await _setup(db)
    # An unknown activation (an early cancel): one lookup, no event row, no delivery.
    assert await _counted(db, "activation_cancel", "01J00000000000000000000M02",
                          "01J0000000000000000000000Z") <= 1
    # Nobody subscribed: no coordinator preferences and no endpoint for the kind.
    async with db.write() as conn:
        await conn.execute(sa.delete(PR))
        await conn.execute(sa.update(EP).values(active=False))
    assert await _counted(db, "activation_update", "01J00000000000000000000M03", AID) <= 1
    # A type that notifies nobody runs nothing at all.
    assert await _counted(db, "ack", "01J00000000000000000000M04", AID) == 0
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(EV))).scalar() == 0
    assert await _deliveries(db) == set()
