"""Qualified names fit the federation and relay name columns on both servers and engines:
the inbox dedupes by `<network>/<node_id>` and the outbox and relay queue by the qualified
destination, up to 95 characters (a 31-character network id and a 63-character node id)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from federation.database import make_engine, migrate
from federation.schema_steps.interstate_names import NAME_LENGTH
from federation.store import OutboxState, inbox, outbox
from hub.relay.forwarding import relay_queue

LONG = "n" + "a" * 30 + "/" + "x" * 63  # the longest qualified name


@pytest.mark.parametrize("server", ["node", "hub"])
async def test_longest_qualified_name_is_stored(db_url: str, server: str) -> None:
    assert len(LONG) == NAME_LENGTH
    engine = make_engine(db_url)
    try:
        await migrate(engine, f"{server}:migrations")
        async with engine.begin() as conn:
            await conn.execute(insert(inbox).values(
                from_node=LONG, msg_id="0" * 26, msg_type="ack", status="accepted", code=None,
                received_ts=1, expires_ts=2))
            await conn.execute(insert(outbox).values(
                destination=LONG, msg_id="0" * 26, msg_type="ack", envelope=b"{}",
                intent=None, state=OutboxState.PENDING, attempts=0, next_attempt_ts=1,
                created_ts=1, expires_ts=2))
            if server == "hub":
                await conn.execute(insert(relay_queue).values(
                    destination=LONG, from_node=LONG, msg_id="0" * 26, envelope=b"{}",
                    expires_ts=2, attempts=0, next_attempt_ts=1, created_ts=1))
        async with engine.connect() as conn:
            assert (await conn.execute(select(inbox.c.from_node))).scalar_one() == LONG
            assert (await conn.execute(select(outbox.c.destination))).scalar_one() == LONG
    finally:
        await engine.dispose()
