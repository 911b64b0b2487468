"""One message arriving twice at the same moment (direct and via the hub): both deliveries
pass the duplicate lookup, UNIQUE(from, msg_id) refuses the second insert, and the batch is
applied again and answered `duplicate` instead of failing with a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.store import inbox
from protocol.envelope import Opened
from tests.federation.helpers import TEST_TYPE, envelope, put_batch
from tests.federation.network import Network

NetworkFactory = Callable[..., Awaitable[Network]]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_message_committed_by_another_path_meanwhile_is_a_duplicate(
    network: NetworkFactory, db: str
) -> None:
    if db == "sqlite":
        pytest.skip("a SQLite write transaction holds the write lock from BEGIN IMMEDIATE: "
                    "no other connection can commit inside it (test_sqlite_write_lock.py)")
    net = await network(2, db=db)
    a, b = net.nodes
    applied: list[str] = []

    async def other_path_commits_first(conn: AsyncConnection, opened: Opened) -> None:
        applied.append(opened.inner.msg_id)
        if len(applied) == 1:
            # The same message, committed by a concurrent delivery on another connection.
            async with b.db.engine.begin() as other:
                await other.execute(
                    insert(inbox).values(
                        from_node=opened.inner.from_, msg_id=opened.inner.msg_id,
                        msg_type=opened.inner.type.value, status="accepted", code=None,
                        received_ts=net.clock.now_ms(), expires_ts=opened.inner.expires_ts,
                    )
                )

    b.on(TEST_TYPE, other_path_commits_first)
    env = envelope(net, a, b)
    status, body = await put_batch(a, b.url, b.node_id, [env])
    assert status == 200
    assert [r["status"] for r in body["results"]] == ["duplicate"]
    assert len(applied) == 1  # the second pass found the stored result, no second apply
    async with b.db.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(inbox))).scalar_one()
    assert n == 1
